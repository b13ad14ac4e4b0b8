//! The duration grammar (G4), one module for every part of Pulse that reads or writes a
//! duration: the `.pulse` parser, the checker, the language server and the runtime's settings.
//! A duration is a whole number followed by exactly one unit: `ms`, `s`, `m`, `h` or `d`.

/// Milliseconds per unit, largest first.
const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Milliseconds of one `unit`, `None` for anything but the five units.
pub fn unit_millis(unit: &str) -> Option<u64> {
    UNITS.iter().find(|(name, _)| *name == unit).map(|(_, millis)| *millis)
}

/// Parses `^\d+(ms|s|m|h|d)$` into milliseconds; the error says what is wrong.
pub fn parse(text: &str) -> Result<u64, &'static str> {
    let digits_end = text.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err("expected a number before the unit");
    }
    let factor = match unit {
        "" => return Err("missing unit"),
        unit => unit_millis(unit).ok_or("not a duration")?,
    };
    digits.parse::<u64>().ok().and_then(|number| number.checked_mul(factor)).ok_or("duration is too large")
}

/// The canonical spelling of a number of milliseconds: the largest unit that divides it
/// (300000 -> `5m`, 0 -> `0ms`).
pub fn format(millis: u64) -> String {
    for (unit, size) in UNITS {
        if millis != 0 && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_in_their_largest_unit() {
        for (text, millis) in [("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("2h", 7_200_000), ("7d", 604_800_000)]
        {
            assert_eq!(parse(text), Ok(millis));
            assert_eq!(format(millis), text);
        }
        assert_eq!(format(90_000), "90s");
        assert_eq!(format(0), "0ms");
        assert_eq!(parse("5"), Err("missing unit"));
        assert_eq!(parse("m"), Err("expected a number before the unit"));
        assert_eq!(parse("5w"), Err("not a duration"));
        assert_eq!(parse("1h30m"), Err("not a duration"));
        assert_eq!(parse("99999999999999999999d"), Err("duration is too large"));
    }
}
