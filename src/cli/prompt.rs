//! Asking the person at the terminal for approval.

use std::io::{BufRead, IsTerminal, Write};

use super::report::{fail, CmdResult, Failed};

/// Ask `question`; only `yes` approves. Refuses when stdin is not a terminal.
pub fn confirm(question: &str, detail: &str, what: &str) -> CmdResult<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(format!(
            "{what} needs confirmation but stdin is not a terminal: run it with `-auto-approve`"
        )));
    }
    let mut out = std::io::stdout();
    let _ = write!(
        out,
        "{question}\n  {detail}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| fail(format!("cannot read the answer: {e}")))?;
    Ok(line.trim() == "yes")
}

/// Ask for approval (unless `auto_approve`): on anything but `yes`, say
/// `cancelled` and end the command with exit code 1.
pub fn approve(
    auto_approve: bool,
    question: &str,
    detail: &str,
    what: &str,
    cancelled: &str,
) -> CmdResult<()> {
    if auto_approve {
        return Ok(());
    }
    if !confirm(question, detail, what)? {
        println!("\n{cancelled}");
        return Err(Failed(1));
    }
    println!();
    Ok(())
}
