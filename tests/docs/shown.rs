//! The deskmail command lines a Markdown document shows: in fenced `sh`, `console`, `bash` and
//! `shell` blocks, the lines whose program is deskmail (behind an optional `$ ` prompt and
//! `runuser -u USER --`); in the other blocks, the deskmail command an MTA's configuration runs
//! (`argv=`, `command =`, an alias's `"|`), which gets a mail on stdin.

/// One command line as a document shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The document, relative to the repository (`docs/mta-pipe.md`).
    pub file: String,
    /// The line it starts on (1-based).
    pub line: usize,
    /// The line as shown.
    pub text: String,
    /// The arguments after the program, global options (`--config`, `-v`) left out.
    pub args: Vec<String>,
    /// The file of a `< FILE` redirect.
    pub stdin: Option<String>,
    /// An MTA runs it, handing it one mail on stdin.
    pub piped_mail: bool,
    /// The shell comment after it (`# refused: ...`).
    pub comment: String,
}

impl Shown {
    /// The command's name: `ticket act`, `ingest`, `auth login`, `--version`.
    pub fn command(&self) -> String {
        let groups = ["ticket", "outbox", "inbound", "auth"];
        match self.args.first() {
            Some(first) if groups.contains(&first.as_str()) => match self.args.get(1) {
                Some(second) => format!("{first} {second}"),
                None => first.clone(),
            },
            Some(first) => first.clone(),
            None => String::new(),
        }
    }

    /// Where it is shown, for a failure's message.
    pub fn at(&self) -> String {
        format!("{}:{}: `{}`", self.file, self.line, self.text)
    }
}

/// A shell word, or an operator (`|`, `<`, `>`, `&&`, `;`) outside quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Word(String),
    Op(String),
}

/// Every command line of deskmail the document shows.
pub fn commands(file: &str, text: &str) -> Vec<Shown> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_lowercase()),
            };
            pending = None;
            continue;
        }
        let Some(info) = &fence else { continue };
        if ["sh", "console", "bash", "shell"].contains(&info.as_str()) {
            // A line ending in `\` goes on in the next one.
            let (start, joined) = match pending.take() {
                Some((start, before)) => (start, format!("{before} {trimmed}")),
                None => (i + 1, trimmed.to_string()),
            };
            if let Some(head) = joined.trim_end().strip_suffix('\\') {
                pending = Some((start, head.to_string()));
                continue;
            }
            if let Some(shown) = shell_line(file, start, &joined) {
                out.push(shown);
            }
        } else if let Some(shown) = mta_line(file, i + 1, trimmed) {
            out.push(shown);
        }
    }
    out
}

/// A line of a shell block, if it runs deskmail.
fn shell_line(file: &str, line: usize, text: &str) -> Option<Shown> {
    let text = text.trim();
    let text = text.strip_prefix("$ ").unwrap_or(text);
    let (tokens, comment) = tokenize(text);
    let mut words = tokens.iter().peekable();
    let mut program = None;
    // `runuser -u deskmail -- deskmail ...`: the command after `--`.
    if let Some(Token::Word(first)) = words.peek()
        && first == "runuser"
    {
        for t in words.by_ref() {
            if *t == Token::Word("--".into()) {
                break;
            }
        }
    }
    if let Some(Token::Word(w)) = words.next() {
        program = Some(w.clone());
    }
    let program = program?;
    if program != "deskmail" && !program.ends_with("/deskmail") {
        return None;
    }
    let rest: Vec<Token> = words.cloned().collect();
    Some(shown(file, line, text, &rest, false, comment))
}

/// The deskmail command an MTA's configuration line runs, if any.
fn mta_line(file: &str, line: usize, text: &str) -> Option<Shown> {
    let after = ["argv=", "command =", "command=", "\"|"]
        .iter()
        .find_map(|marker| text.split_once(marker).map(|(_, rest)| rest))?;
    let after = after.trim().trim_end_matches('"');
    let (tokens, _) = tokenize(after);
    let mut words = tokens.iter();
    match words.next() {
        Some(Token::Word(w)) if w.ends_with("/deskmail") => {}
        _ => return None,
    }
    let rest: Vec<Token> = words.cloned().collect();
    Some(shown(file, line, text, &rest, true, String::new()))
}

/// The command of `file:line` (its `text`), from the tokens after the program's name.
fn shown(
    file: &str,
    line: usize,
    text: &str,
    rest: &[Token],
    piped_mail: bool,
    comment: String,
) -> Shown {
    let (args, stdin) = arguments(rest);
    Shown {
        file: file.to_string(),
        line,
        text: text.to_string(),
        args,
        stdin,
        piped_mail,
        comment,
    }
}

/// The arguments up to the first operator, without the global options; a `< FILE` redirect's
/// file.
fn arguments(tokens: &[Token]) -> (Vec<String>, Option<String>) {
    let mut args = Vec::new();
    let mut stdin = None;
    let mut iter = tokens.iter();
    let mut words_done = false;
    while let Some(t) = iter.next() {
        match t {
            Token::Op(op) if op == "<" => {
                if let Some(Token::Word(f)) = iter.next() {
                    stdin = Some(f.clone());
                }
            }
            Token::Op(_) => words_done = true,
            Token::Word(w) if !words_done => args.push(w.clone()),
            Token::Word(_) => {}
        }
    }
    (without_global_options(args), stdin)
}

/// The arguments without `--config FILE`, `-c FILE`, `--config=FILE` and `-v`/`-vv`: the test
/// gives its own config, and verbosity changes nothing a test can see.
fn without_global_options(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.into_iter();
    while let Some(a) = iter.next() {
        match a.as_str() {
            "--config" | "-c" => {
                iter.next();
            }
            "-v" | "-vv" | "--verbose" => {}
            _ if a.starts_with("--config=") => {}
            _ => out.push(a),
        }
    }
    out
}

/// Splits a shell line into words and operators, as sh would (quotes, backslashes, `$(...)`
/// kept in its word); the comment after an unquoted `#` that starts a word is returned apart.
pub fn tokenize(line: &str) -> (Vec<Token>, String) {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                in_word = true;
                word.push('$');
                let mut depth = 0;
                for q in chars.by_ref() {
                    word.push(q);
                    match q {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '#' if !in_word => {
                let comment: String = chars.collect();
                return (tokens, comment.trim().to_string());
            }
            c if c.is_whitespace() => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
            }
            '|' | '&' | ';' | '<' | '>' => {
                if in_word {
                    tokens.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
                let mut op = c.to_string();
                while let Some(&n) = chars.peek() {
                    if !"|&;<>".contains(n) {
                        break;
                    }
                    op.push(n);
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    (tokens, String::new())
}

#[test]
fn shell_words_quotes_operators_and_comments() {
    let (tokens, comment) =
        tokenize(r#"deskmail ticket act "$ref" --comment 'a b' < in.eml | man -l - # refused: x"#);
    let w = |s: &str| Token::Word(s.into());
    assert_eq!(
        tokens,
        vec![
            w("deskmail"),
            w("ticket"),
            w("act"),
            w("$ref"),
            w("--comment"),
            w("a b"),
            Token::Op("<".into()),
            w("in.eml"),
            Token::Op("|".into()),
            w("man"),
            w("-l"),
            w("-"),
        ]
    );
    assert_eq!(comment, "refused: x");
}

#[test]
fn commands_are_found_in_shell_blocks_and_mta_configs() {
    let doc = "text `deskmail run` in prose\n\
        ```sh\n\
        $ runuser -u deskmail -- deskmail --config /etc/d.toml check-config\n\
        deskmail() { ./target/debug/deskmail \"$@\"; }\n\
        deskmail backup \\\n  /var/b.sqlite   # a backup\n\
        cargo bench\n\
        ```\n\
        ```\n\
          flags=Rq user=deskmail argv=/usr/local/bin/deskmail --config /etc/d.toml ingest --mailbox support\n\
        ```\n\
        ```toml\n\
        deskmail = 1\n\
        ```\n";
    let shown = commands("x.md", doc);
    let args: Vec<_> = shown.iter().map(|s| (s.line, s.args.join(" "))).collect();
    assert_eq!(
        args,
        vec![
            (3, "check-config".to_string()),
            (5, "backup /var/b.sqlite".to_string()),
            (10, "ingest --mailbox support".to_string()),
        ]
    );
    assert!(shown[2].piped_mail);
    assert_eq!(shown[1].comment, "a backup");
}
