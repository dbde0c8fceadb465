//! `httphooks man`: the man pages, rendered by clap_mangen from the definitions `--help`
//! shows, one for httphooks and one per subcommand (`httphooks-hooks-add(1)`).

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// Prints the page of httphooks, or of the subcommand at `path`.
pub fn print(path: &[String]) -> Result<ExitCode> {
    super::print_bytes(&render(&page_of(path)?, path))
}

/// Writes httphooks.1 and a page per subcommand into `dir`, as packages install them.
pub fn write_all(dir: &Path) -> Result<ExitCode> {
    let cannot = |what: &str, path: &Path, e: std::io::Error| {
        let why = if path.is_file() {
            "it is a file".to_owned()
        } else {
            e.to_string()
        };
        Error::environment(format!(
            "cannot {what} {}: {why}; name a folder you may write to",
            path.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot("create", dir, e))?;
    let mut paths = vec![Vec::new()];
    let mut written = 0;
    while let Some(path) = paths.pop() {
        let command = page_of(&path)?;
        for sub in command.get_subcommands() {
            let mut deeper = path.clone();
            deeper.push(sub.get_name().to_owned());
            paths.push(deeper);
        }
        let file = dir.join(format!("{}.1", command.get_name()));
        std::fs::write(&file, render(&command, &path)).map_err(|e| cannot("write", &file, e))?;
        written += 1;
    }
    println!("wrote {written} man pages to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The command a page describes: httphooks, or the subcommand at `path`, named as its
/// page is (`httphooks-send_callbacks`).
fn page_of(path: &[String]) -> Result<clap::Command> {
    // Built, so that every page lists the global flags (--database-url); without the
    // `help` subcommand, which has no page.
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    for (depth, name) in path.iter().enumerate() {
        let Some(sub) = command.find_subcommand(name).cloned() else {
            let parent = ["httphooks"]
                .into_iter()
                .chain(path[..depth].iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            let known: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
            return Err(Error::invalid(if known.is_empty() {
                format!(
                    "{parent} has no subcommands; its page is `httphooks man {}`",
                    path[..depth].join(" ")
                )
            } else {
                format!(
                    "{parent} has no subcommand {name:?}; the pages are those of {}",
                    known.join(", ")
                )
            }));
        };
        command = sub;
    }
    if path.is_empty() {
        // The version without the backends, so that every build renders the same page.
        return Ok(command.version(env!("CARGO_PKG_VERSION")));
    }
    Ok(command
        .name(format!("httphooks-{}", path.join("-")))
        .bin_name(format!("httphooks {}", path.join(" "))))
}

/// The page in roff: clap_mangen's sections, then the examples as typed (no filling, no
/// hyphenation, ASCII hyphens, so that they can be copied), then the pages around it.
fn render(command: &clap::Command, path: &[String]) -> Vec<u8> {
    let man = clap_mangen::Man::new(command.clone())
        .source(format!("httphooks {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut page);
    let _ = man.render_name_section(&mut page);
    let _ = man.render_synopsis_section(&mut page);
    let _ = man.render_description_section(&mut page);
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut page);
    }
    if command.has_subcommands() {
        let _ = man.render_subcommands_section(&mut page);
    }
    let after_help = command
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    if let Some(examples) = after_help.strip_prefix("Examples:\n") {
        page.extend_from_slice(b".SH EXAMPLES\n.nf\n");
        for line in examples.lines() {
            page.extend_from_slice(verbatim(line.trim_start()).as_bytes());
            page.push(b'\n');
        }
        page.extend_from_slice(b".fi\n");
    } else if let Some(codes) = after_help.strip_prefix("Exit codes: ") {
        page.extend_from_slice(format!(".SH \"EXIT STATUS\"\n{}\n", verbatim(codes)).as_bytes());
    } else if !after_help.is_empty() {
        let _ = man.render_extra_section(&mut page);
    }
    if path.is_empty() {
        let _ = man.render_version_section(&mut page);
    }
    let mut see_also = vec![r"\fBhttphooks\fR(1)".to_owned()];
    for depth in 1..path.len() {
        see_also.push(format!(
            r"\fBhttphooks\-{}\fR(1)",
            path[..depth].join(r"\-")
        ));
    }
    page.extend_from_slice(b".SH \"SEE ALSO\"\n");
    if !path.is_empty() {
        page.extend_from_slice(format!("{}\n.PP\n", see_also.join(", ")).as_bytes());
    }
    page.extend_from_slice(
        b"The README, with the walkthroughs: /usr/share/doc/httphooks/README.md (Debian package).\n",
    );
    // The help's ellipses as troff's own, which every output device has.
    String::from_utf8_lossy(&page)
        .replace('…', r"\&...")
        .into_bytes()
}

/// A line of text as roff prints it unchanged.
fn verbatim(line: &str) -> String {
    let escaped = line.replace('\\', r"\e").replace('-', r"\-");
    if escaped.starts_with(['.', '\'']) {
        format!(r"\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_keep_their_hyphens_and_backslashes() {
        assert_eq!(verbatim("a --b c\\d"), r"a \-\-b c\ed");
        assert_eq!(verbatim(".x"), r"\&.x");
    }

    #[test]
    fn pages_list_the_global_flags_and_no_help_or_version() {
        let page = String::from_utf8(render(
            &page_of(&["send_callbacks".to_owned()]).unwrap(),
            &["send_callbacks".to_owned()],
        ))
        .unwrap();
        assert!(page.contains(r"\-\-database\-url"), "{page}");
        assert!(!page.contains(r"\-\-version"), "{page}");
        assert!(page.contains(".SH EXAMPLES\n.nf\n"), "{page}");
        let top = String::from_utf8(render(&page_of(&[]).unwrap(), &[])).unwrap();
        assert!(!top.contains("httphooks\\-help"), "{top}");
        assert!(top.contains("httphooks\\-send_callbacks(1)"), "{top}");
    }
}
