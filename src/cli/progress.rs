//! Apply progress for people: an indicatif bar on a terminal, plain
//! timestamped lines otherwise (CI logs). Implements the engine's
//! [`ApplyHook`]; the engine itself never prints.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::addrs::InstanceAddr;
use crate::apply::{ApplyHook, OpKind};
use crate::plan::refresh::Refreshed;
use crate::platform::PlatformError;

/// The CLI's progress reporter.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Print to stderr (when stdout carries JSON).
    to_stderr: bool,
    /// Print refresh lines.
    show_refresh: bool,
    lock: Mutex<()>,
}

impl Progress {
    /// `interactive`: stderr is a terminal; `total`: operations expected (0 = unknown).
    pub fn new(interactive: bool, to_stderr: bool) -> Progress {
        Progress {
            bar: None,
            to_stderr,
            show_refresh: !interactive,
            lock: Mutex::new(()),
        }
        .with_bar(interactive)
    }

    fn with_bar(mut self, interactive: bool) -> Progress {
        if interactive {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {pos} done, {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            // Hidden until the walk starts: the plan and the confirmation
            // prompt come first, and a spinner would draw over them.
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            self.bar = Some(bar);
        }
        self
    }

    /// Quiet: no refresh lines (used by `plan` on a terminal).
    pub fn quiet_refresh(mut self) -> Progress {
        self.show_refresh = false;
        self
    }

    /// Show the live display (on a terminal): the walk begins.
    pub fn start(&self) {
        if let Some(b) = &self.bar {
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            b.enable_steady_tick(Duration::from_millis(120));
        }
    }

    /// Remove the bar before the final summary.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match &self.bar {
            Some(b) => b.println(text),
            None => {
                let stamp = crate::state::now_rfc3339();
                let time = stamp.get(11..19).unwrap_or("");
                if self.to_stderr {
                    eprintln!("{time} {text}");
                } else {
                    println!("{time} {text}");
                }
            }
        }
    }
}

fn verb(op: OpKind) -> (&'static str, &'static str) {
    match op {
        OpKind::Create => ("Creating...", "Creation complete"),
        OpKind::Update => ("Modifying...", "Modifications complete"),
        OpKind::Delete => ("Destroying...", "Destruction complete"),
    }
}

impl ApplyHook for Progress {
    fn refreshing(&self, addr: &InstanceAddr) {
        if self.show_refresh {
            self.line(format!("{addr}: Refreshing state..."));
        }
    }

    fn refreshed(&self, addr: &InstanceAddr, result: &Refreshed) {
        if let (true, Refreshed::Gone) = (self.show_refresh, result) {
            self.line(format!("{addr}: not found (deleted outside tg)"));
        }
    }

    fn pre_apply(&self, addr: &InstanceAddr, op: OpKind) {
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "{} {addr}",
                verb(op).0.trim_end_matches("...").to_lowercase()
            ));
        }
        self.line(format!("{addr}: {}", verb(op).0));
    }

    fn post_apply(
        &self,
        addr: &InstanceAddr,
        op: OpKind,
        error: Option<&PlatformError>,
        elapsed: Duration,
    ) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        match error {
            None => self.line(format!(
                "{addr}: {} after {}s",
                verb(op).1,
                elapsed.as_secs()
            )),
            Some(e) => self.line(format!("{addr}: {op} failed: {}", e.message)),
        }
    }

    fn skipped(&self, addr: &InstanceAddr, op: OpKind, because: Option<&InstanceAddr>) {
        match because {
            Some(b) => self.line(format!("{addr}: {op} skipped because `{b}` failed")),
            None => self.line(format!("{addr}: {op} not started")),
        }
    }

    fn interrupted(&self, in_flight: usize) {
        self.line(format!(
            "interrupted: starting nothing new; waiting for {in_flight} operation(s) in flight"
        ));
    }

    fn note(&self, message: &str) {
        self.line(message.to_string());
    }
}
