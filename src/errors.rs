//! How an error is shown: its own text and then each cause (`source()`), so that "the store is
//! unavailable" comes with the refused connection behind it. deskmail's error types keep a
//! cause as their source rather than in their text; a reader of errors (the command line, the
//! log, `/readyz`) shows the chain with [`causes`] or [`Chain`]. Also what a panicked task or
//! thread said ([`panic_message`]), kept with the error that reports it.

use std::any::Any;
use std::error::Error;
use std::fmt;

/// The error's text and then each cause's, in order. A cause whose text ends the text before
/// it is left out: some libraries' errors (sqlx's, for one) write their source into their own
/// text as well, and it would be shown twice.
pub fn causes(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        let said = out.last().is_some_and(|before| before.ends_with(&text));
        if !said && !text.is_empty() {
            out.push(text);
        }
        next = cause.source();
    }
    out
}

/// An error and its causes on one line, `text: cause: cause`: for the log, `/readyz` and the
/// lines an MTA quotes.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&causes(self.0).join(": "))
    }
}

/// [`Chain`] as a `String`.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    Chain(error).to_string()
}

/// What a panic said: its message, when it was a string (as `panic!` with a message makes it).
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// A task that did not finish: it panicked (with what it said) or was cancelled. Made from a
/// tokio `JoinError`, whose panic payload it keeps as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskFailed {
    #[error("the task panicked: {0}")]
    Panicked(String),
    #[error("the task was cancelled")]
    Cancelled,
}

impl From<tokio::task::JoinError> for TaskFailed {
    fn from(e: tokio::task::JoinError) -> Self {
        match e.try_into_panic() {
            Ok(payload) => TaskFailed::Panicked(panic_message(payload.as_ref()).to_string()),
            Err(_) => TaskFailed::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn each_cause_is_shown_once() {
        let e = Outer(Middle(std::io::Error::other("disk on fire")));
        // `Middle` writes its cause into its text as well: it is not repeated.
        assert_eq!(causes(&e), ["outer", "middle: disk on fire"]);
        assert_eq!(chain(&e), "outer: middle: disk on fire");
        assert_eq!(causes(&std::io::Error::other("alone")), ["alone"]);
    }

    #[test]
    fn a_panicked_thread_says_what_it_said() {
        let joined = std::thread::spawn(|| panic!("the {} broke", "valve")).join();
        assert_eq!(
            panic_message(joined.unwrap_err().as_ref()),
            "the valve broke"
        );
        let joined = std::thread::spawn(|| std::panic::panic_any(42)).join();
        assert_eq!(
            panic_message(joined.unwrap_err().as_ref()),
            "a panic without a message"
        );
    }

    #[tokio::test]
    async fn a_panicked_task_keeps_what_it_said() {
        let task = tokio::spawn(async { panic!("the {} broke", "pump") });
        let failed = TaskFailed::from(task.await.unwrap_err());
        assert_eq!(failed, TaskFailed::Panicked("the pump broke".into()));
        assert_eq!(failed.to_string(), "the task panicked: the pump broke");
        let task = tokio::spawn(async { panic!("a literal") });
        assert_eq!(
            TaskFailed::from(task.await.unwrap_err()),
            TaskFailed::Panicked("a literal".into())
        );
        let task = tokio::spawn(std::future::pending::<()>());
        task.abort();
        assert_eq!(
            TaskFailed::from(task.await.unwrap_err()),
            TaskFailed::Cancelled
        );
    }
}
