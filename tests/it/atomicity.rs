//! A killed run leaves every table at its previous version.
