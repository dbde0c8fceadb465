//! Sizes of payloads as users write and read them: `10MB`, `512KB`, `2 MiB`, `1048576`.
//! A kilobyte is 1,024 bytes here, as in nginx's and most servers' body limits.

/// What a hook allows a callback to hold unless told otherwise (`--max-payload-size`).
pub const DEFAULT_MAX_PAYLOAD: i64 = 10 * MB;
/// The range `--max-payload-size` takes: a kilobyte to a gigabyte (PostgreSQL's
/// limit for one value).
pub const MIN_MAX_PAYLOAD: i64 = KB;
pub const MAX_MAX_PAYLOAD: i64 = 1024 * MB;

const KB: i64 = 1024;
const MB: i64 = 1024 * KB;

/// Parses a size: a number of bytes, optionally with a unit (B, K/KB/KiB, M/MB/MiB,
/// G/GB/GiB, any case, a space allowed before it) and a fraction (`1.5MB`).
pub fn parse(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_bytes = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KB,
        "m" | "mb" | "mib" => MB,
        "g" | "gb" | "gib" => 1024 * MB,
        _ => {
            return Err(format!(
                "{text:?} is not a size; write it like 10MB, 512KB or 1048576"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write it like 10MB, 512KB or 1048576"))?;
    Ok((value * unit_bytes as f64).round() as i64)
}

/// A size for people: "10.0 MB", "512.0 KB", "300 bytes" (the form the databases'
/// messages use too).
pub fn format(bytes: i64) -> String {
    if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else if bytes >= KB {
        format!("{:.1} KB", bytes as f64 / KB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// A size for messages that compare two: [`format`] with the exact bytes, so that two
/// sizes that round alike still read apart ("1.0 KB (1048 bytes)").
pub fn format_exact(bytes: i64) -> String {
    if bytes >= KB {
        format!("{} ({bytes} bytes)", format(bytes))
    } else {
        format(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_or_without_units() {
        assert_eq!(parse("1MB"), Ok(1_048_576));
        assert_eq!(parse("10 mb"), Ok(10_485_760));
        assert_eq!(parse("1.5MiB"), Ok(1_572_864));
        assert_eq!(parse("512k"), Ok(524_288));
        assert_eq!(parse("2G"), Ok(2_147_483_648));
        assert_eq!(parse("4096"), Ok(4096));
        assert!(parse("ten MB").is_err());
        assert!(parse("10 parsecs").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn sizes_are_shown_in_the_largest_whole_unit() {
        assert_eq!(format(10_485_760), "10.0 MB");
        assert_eq!(format(1536), "1.5 KB");
        assert_eq!(format(300), "300 bytes");
        assert_eq!(format_exact(1048), "1.0 KB (1048 bytes)");
        assert_eq!(format_exact(300), "300 bytes");
    }
}
