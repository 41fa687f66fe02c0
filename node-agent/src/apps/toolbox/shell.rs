//! A tiny `sh`/`bash`: enough of `sh -c "..."` for the one-liners people exec into pods —
//! words with single and double quotes and backslashes, `$VAR`, `${VAR}` and `$?` from the
//! container's environment, commands joined by `;`, newlines, `&&` and `||`, pipelines
//! (`echo hostname | nc -u ...`: each stage runs to its end and its stdout is the next one's
//! stdin), and the `exit`, `cd` and `:` builtins. Redirections and command substitution are
//! refused with a clear message rather than half-run.

use bytes::{Bytes, BytesMut};

use super::{Chunk, ExecError, Output, Pod, dispatch_in};

/// Runs `sh ARGS` (or `ash`, `bash`, named by `name`); returns the exit code.
pub(super) async fn run(name: &str, args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    let script = match args.first().map(String::as_str) {
        // No script and no stdin (exec gives none): the shell reads EOF and exits.
        None => return 0,
        Some(flag) if flag.starts_with('-') && flag.contains('c') => match args.get(1) {
            Some(script) => script,
            None => {
                out.err(format!("{name}: -c requires an argument\n"));
                return 2;
            }
        },
        Some(flag) if flag.starts_with('-') => return 0,
        Some(path) => {
            out.err(match name {
                "bash" => format!("bash: {path}: No such file or directory\n"),
                _ => format!("{name}: can't open '{path}': No such file or directory\n"),
            });
            return 127;
        }
    };
    let commands = match parse(script) {
        Ok(c) => c,
        Err(e) => {
            out.err(format!("{name}: netlab: {e}\n"));
            return 2;
        }
    };
    let mut last = 0;
    for (joint, words) in commands {
        match joint {
            Joint::And if last != 0 => continue,
            Joint::Or if last == 0 => continue,
            _ => {}
        }
        let stages: Vec<&[Word]> = words.split(|w| w.pipe).collect();
        let mut stdin = Bytes::new();
        for (i, stage) in stages.iter().enumerate() {
            let argv = expand(stage, last, pod.env());
            let piped = i + 1 < stages.len();
            if !piped {
                if let Some("exit") = argv.first().map(String::as_str) {
                    return match argv.get(1) {
                        None => last,
                        Some(code) => code.parse::<i64>().map_or(2, |c| (c & 0xff) as i32),
                    };
                }
                last = simple(name, &argv, stdin.clone(), pod, out).await;
                continue;
            }
            // A stage whose stdout is the next one's stdin; its stderr still shows.
            let (stage_out, mut rx) = Output::new();
            let _ = simple(name, &argv, std::mem::take(&mut stdin), pod, &stage_out).await;
            drop(stage_out);
            let mut buf = BytesMut::new();
            while let Some(chunk) = rx.recv().await {
                match chunk {
                    Chunk::Stdout(b) => buf.extend_from_slice(&b),
                    Chunk::Stderr(b) => out.err(b),
                }
            }
            stdin = buf.freeze();
        }
    }
    last
}

/// Runs one simple command (a builtin or a tool); returns its exit code.
async fn simple(name: &str, argv: &[String], stdin: Bytes, pod: &dyn Pod, out: &Output) -> i32 {
    let Some(first) = argv.first() else { return 0 };
    match first.as_str() {
        // `exit` in a pipeline stage leaves only that stage (a subshell).
        "exit" => argv.get(1).map_or(0, |code| code.parse::<i64>().map_or(2, |c| (c & 0xff) as i32)),
        ":" | "cd" => 0,
        _ => match dispatch_in(argv, stdin, pod, out).await {
            Ok(code) => code,
            Err(ExecError::NotFound(cmd)) => {
                out.err(match name {
                    "bash" => format!("bash: line 1: {cmd}: command not found\n"),
                    _ => format!("{name}: {cmd}: not found\n"),
                });
                127
            }
        },
    }
}

/// How a command is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joint {
    /// `;`, a newline, or the first command.
    Seq,
    /// `&&`: runs if the previous succeeded.
    And,
    /// `||`: runs if the previous failed.
    Or,
}

/// A piece of a word: literal text or a parameter expanded when the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

/// A word, and whether any of it was quoted (a quoted empty word survives expansion); or, with
/// `pipe`, the `|` between two stages of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Word {
    parts: Vec<Part>,
    quoted: bool,
    pipe: bool,
}

impl Word {
    fn push(&mut self, c: char) {
        match self.parts.last_mut() {
            Some(Part::Lit(s)) => s.push(c),
            _ => self.parts.push(Part::Lit(c.to_string())),
        }
    }
}

/// Shell syntax this `sh` does not implement (pipes, redirections, subshells, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported shell syntax: {0}")]
struct Unsupported(String);

/// Splits a script into commands.
fn parse(script: &str) -> Result<Vec<(Joint, Vec<Word>)>, Unsupported> {
    let mut commands = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut word: Option<Word> = None;
    let mut joint = Joint::Seq;
    let mut chars = script.chars().peekable();
    let end_command = |words: &mut Vec<Word>,
                       word: &mut Option<Word>,
                       commands: &mut Vec<(Joint, Vec<Word>)>,
                       joint: Joint| {
        if let Some(w) = word.take() {
            words.push(w);
        }
        if !words.is_empty() {
            commands.push((joint, std::mem::take(words)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '#' if word.is_none() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                end_command(&mut words, &mut word, &mut commands, joint);
                joint = Joint::Seq;
            }
            ';' | '\n' => {
                end_command(&mut words, &mut word, &mut commands, joint);
                joint = Joint::Seq;
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                end_command(&mut words, &mut word, &mut commands, joint);
                joint = Joint::And;
            }
            '|' if chars.peek() == Some(&'|') => {
                chars.next();
                end_command(&mut words, &mut word, &mut commands, joint);
                joint = Joint::Or;
            }
            '|' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
                if words.is_empty() || words.last().is_some_and(|w| w.pipe) {
                    return Err(Unsupported("syntax error near unexpected token `|'".into()));
                }
                words.push(Word { pipe: true, ..Word::default() });
            }
            '&' | '>' | '<' | '`' | '(' | ')' => return Err(Unsupported(c.to_string())),
            '\'' => {
                let w = word.get_or_insert_with(Word::default);
                w.quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(Unsupported("unterminated quoted string".into())),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(Word::default);
                w.quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(Unsupported("unterminated quoted string".into())),
                        },
                        Some('$') => parameter(&mut chars, w)?,
                        Some('`') => return Err(Unsupported("`".into())),
                        Some(c) => w.push(c),
                        None => return Err(Unsupported("unterminated quoted string".into())),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(c) => word.get_or_insert_with(Word::default).push(c),
            },
            '$' => parameter(&mut chars, word.get_or_insert_with(Word::default))?,
            c => word.get_or_insert_with(Word::default).push(c),
        }
    }
    end_command(&mut words, &mut word, &mut commands, joint);
    Ok(commands)
}

/// Reads the parameter after a `$` into `w`.
fn parameter(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, w: &mut Word) -> Result<(), Unsupported> {
    match chars.peek().copied() {
        Some('{') => {
            chars.next();
            let mut name = String::new();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '?' => name.push(c),
                    _ => return Err(Unsupported("${".into())),
                }
            }
            w.parts.push(Part::Var(name));
        }
        Some('(') => return Err(Unsupported("$(".into())),
        Some(c @ ('?' | '$' | '#' | '0'..='9')) => {
            chars.next();
            w.parts.push(Part::Var(c.to_string()));
        }
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                name.push(c);
                chars.next();
            }
            w.parts.push(Part::Var(name));
        }
        _ => w.push('$'),
    }
    Ok(())
}

/// Expands parameters; an unquoted word that expands to nothing disappears.
fn expand(words: &[Word], last: i32, env: &[(String, String)]) -> Vec<String> {
    words
        .iter()
        .filter_map(|w| {
            let mut s = String::new();
            for part in &w.parts {
                match part {
                    Part::Lit(l) => s.push_str(l),
                    Part::Var(name) => match name.as_str() {
                        "?" => s.push_str(&last.to_string()),
                        "$" => s.push('1'),
                        "#" => s.push('0'),
                        "0" => s.push_str("sh"),
                        _ => {
                            if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
                                s.push_str(v);
                            }
                        }
                    },
                }
            }
            (w.quoted || !s.is_empty()).then_some(s)
        })
        .collect()
}
