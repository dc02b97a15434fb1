//! Rules every free text from a client follows, whatever field or parameter it fills.

/// The first control character in `text` (U+0000 to U+001F, U+007F to U+009F), if any.
/// No field of the model, filter or name takes one: a tab, a line break or a NUL in a
/// value is a mistake of the file or the client, and PostgreSQL cannot store a NUL.
pub fn control_character(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control())
}

/// What is said of a value holding the control character `c`.
pub fn control_character_message(c: char) -> String {
    format!(
        "must not contain control characters such as tabs, line breaks or NUL (found U+{:04X})",
        u32::from(c)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_and_printable_text_passes() {
        assert_eq!(control_character("a\u{0}b"), Some('\u{0}'));
        assert_eq!(control_character("line\nbreak"), Some('\n'));
        assert_eq!(control_character("tab\there"), Some('\t'));
        assert_eq!(control_character("del\u{7f}"), Some('\u{7f}'));
        assert_eq!(control_character("c1\u{85}"), Some('\u{85}'));
        assert_eq!(control_character("Zoë 12 Rue de l'Église, Apt 3 ’ “"), None);
        assert_eq!(
            control_character_message('\u{0}'),
            "must not contain control characters such as tabs, line breaks or NUL (found U+0000)"
        );
    }
}
