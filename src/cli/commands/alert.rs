//! `dp alert test`: one test message through every configured channel,
//! recorded in `data_platform.alert_history` like any alert.

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{AlertAction, GlobalArgs};
use crate::orchestrate::alert::Alert;

pub async fn run(g: &GlobalArgs, action: AlertAction, printer: &Printer) -> anyhow::Result<ExitCode> {
    match action {
        AlertAction::Test => {
            let s = super::pipeline::setup(g)?;
            let channels = s.ctx.alerter.channels();
            if channels.is_empty() {
                printer.warn(
                    "no alert channels configured: the test alert is only recorded\n  hint: add `alerts:` with slack and/or email to a pipelines/*.yml file",
                );
            }
            let a = Alert {
                pipeline: "dp_alert_test".into(),
                task: None,
                severity: "info".into(),
                title: "dp: test alert".into(),
                message: format!("A test alert from dp for project {} (target {}).", s.settings.project_name, s.settings.target.name),
                try_number: None,
                run_id: None,
                log: None,
            };
            let r = s.ctx.alerter.send(&a).await;
            let mut ok = true;
            for d in &r.deliveries {
                match &d.error {
                    None => printer.info(format!("{}: delivered", d.channel)),
                    Some(e) => {
                        ok = false;
                        printer.error(format!("{}: not delivered: {e}", d.channel));
                    }
                }
            }
            match &r.history_error {
                None => printer.info(format!("Recorded alert {} in data_platform.alert_history", r.alert_id)),
                Some(e) => {
                    ok = false;
                    printer.error(format!("not recorded: {e}"));
                }
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
