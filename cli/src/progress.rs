//! Progress on stderr: one bar for the whole command, from 0 % to 100 %.
//!
//! A command runs in steps (read the log, then print what it found; write the demo, then
//! close it). Each step owns a [`Span`] of the bar, and the library's progress callback of a
//! step moves the bar inside its span only, so the bar starts at 0 %, never shows 100 % before
//! the last step ends, and covers the printing too. `compact` and `expire`, which the library
//! reports no progress for, get a spinner with the step's name and the time elapsed.
//!
//! Nothing is drawn unless stderr is a terminal. While a step prints to stdout and stdout is
//! the same terminal, the bar is cleared first: the output itself shows the progress, and a
//! bar redrawn between its lines would garble them.

use std::borrow::Cow;
use std::io::{self, IsTerminal};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A printing step reports progress every this many lines printed.
pub const LINES_PER_REPORT: usize = 4096;

/// Positions of a whole bar: per mille, so that a percentage is exact.
pub const SCALE: u64 = 1000;

/// The part of the bar one step of a command covers, in [`SCALE`] units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Where the step starts.
    pub from: u64,
    /// Where it ends.
    pub to: u64,
}

impl Span {
    /// The whole bar: a command of one step.
    pub const ALL: Span = Span { from: 0, to: SCALE };

    /// The part from `from` % to `to` % of the bar.
    pub const fn percent(from: u64, to: u64) -> Span {
        Span {
            from: from * SCALE / 100,
            to: to * SCALE / 100,
        }
    }

    /// The bar position for `done` of `total` units of this step. Nothing to do (`total` 0)
    /// is a step done; `done` past `total` stays at the step's end.
    pub fn position(self, done: u64, total: u64) -> u64 {
        if total == 0 {
            return self.to;
        }
        let width = u128::from(self.to.saturating_sub(self.from));
        let part = width * u128::from(done.min(total)) / u128::from(total);
        self.from + part as u64
    }
}

/// The bar on screen, if any: log messages are printed with it out of the way.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `print` (which writes to stderr) with the bar on screen, if any, cleared for the
/// time, so that its line does not land in the middle of the bar.
pub fn suspend(print: impl FnOnce()) {
    let shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match shown {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// The progress display of one command.
pub struct Meter {
    bar: ProgressBar,
    /// stdout is a terminal too: output steps clear the bar instead of drawing it.
    stdout_is_terminal: bool,
}

impl Meter {
    fn new(bar: ProgressBar, template: &str, what: &str) -> Meter {
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_string());
        // Drawn at once, at 0 %: the first thing the user sees is the start.
        bar.tick();
        if !bar.is_hidden() {
            *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        }
        Meter {
            bar,
            stdout_is_terminal: io::stdout().is_terminal(),
        }
    }

    /// A bar for a command of steps, at 0 %, labelled `what` until the first step names
    /// itself. Hidden when stderr is not a terminal.
    pub fn bar(what: &str) -> Meter {
        let bar = if io::stderr().is_terminal() {
            ProgressBar::new(SCALE)
        } else {
            ProgressBar::hidden()
        };
        Meter::new(bar, "{msg:<10} [{bar:40}] {percent:>3}% {elapsed}", what)
    }

    /// A spinner, for a step the library reports no progress of: its name and the time
    /// elapsed, redrawn ten times a second. Hidden when stderr is not a terminal.
    pub fn spinner(what: &str) -> Meter {
        let bar = if io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        Meter::new(bar, "{spinner} {msg} {elapsed}", what)
    }

    /// Names the step now running.
    pub fn label(&self, what: impl Into<Cow<'static, str>>) {
        self.bar.set_message(what);
    }

    /// Starts a step the library reports no progress of: names it and puts the bar at the
    /// start of its span.
    pub fn begin(&self, what: &'static str, span: Span) {
        self.label(what);
        self.bar.set_position(span.from);
    }

    /// A progress callback for a step that reads (or writes the database): it names the
    /// step and moves the bar inside `span`.
    pub fn step<'a>(&'a self, what: &'static str, span: Span) -> impl Fn(u64, u64) + 'a {
        self.begin(what, span);
        move |done, total| self.bar.set_position(span.position(done, total))
    }

    /// A progress callback for a step that prints to stdout: as [`Meter::step`], except that
    /// the bar is cleared for good when stdout is the terminal it is drawn on.
    pub fn output_step<'a>(&'a self, what: &'static str, span: Span) -> impl Fn(u64, u64) + 'a {
        if self.stdout_is_terminal {
            self.bar.finish_and_clear();
        }
        self.step(what, span)
    }

    /// Ends the display: the bar is cleared from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        SHOWN.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_maps_its_progress_into_its_span() {
        let read = Span::percent(0, 40);
        assert_eq!(read, Span { from: 0, to: 400 });
        assert_eq!(read.position(0, 1000), 0, "starts at 0 %");
        assert_eq!(read.position(500, 1000), 200);
        assert_eq!(
            read.position(1000, 1000),
            400,
            "ends where the next step starts"
        );
        let print = Span::percent(40, 100);
        assert_eq!(print.position(0, 7), 400);
        assert_eq!(print.position(7, 7), SCALE, "the last step ends at 100 %");
    }

    #[test]
    fn nothing_to_do_is_a_step_done_and_overshoot_stays_at_the_end() {
        let span = Span::percent(20, 80);
        assert_eq!(span.position(0, 0), 800);
        assert_eq!(span.position(9, 3), 800);
        assert_eq!(Span::ALL.position(u64::MAX, u64::MAX), SCALE, "no overflow");
        assert_eq!(Span::ALL.position(u64::MAX - 1, u64::MAX), SCALE - 1);
    }

    #[test]
    fn a_new_bar_is_at_zero_not_full() {
        // The old bar started with length 0, which indicatif draws as 100 %.
        let meter = Meter {
            bar: ProgressBar::hidden(),
            stdout_is_terminal: false,
        };
        meter.bar.set_length(SCALE);
        assert_eq!(meter.bar.position(), 0);
        let read = meter.step("reading", Span::percent(0, 50));
        read(0, 10);
        assert_eq!(meter.bar.position(), 0);
        read(10, 10);
        assert_eq!(
            meter.bar.position(),
            500,
            "reading done is half the command"
        );
        let print = meter.output_step("writing", Span::percent(50, 100));
        print(1, 2);
        assert_eq!(meter.bar.position(), 750);
    }
}
