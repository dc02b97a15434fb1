//! "Did you mean ...?" for misspelt field names, columns and enum values.

/// The candidate closest to `input` by edit distance (case-insensitive), if it is close
/// enough to be a plausible typo: at most a third of the input's length, and at most 3.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Names and values in the model are short; a long input is no typo of one of them.
    let length = input.chars().count();
    if length > 64 {
        return None;
    }
    let input = input.to_lowercase();
    let limit = (length / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (edit_distance(&input, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A name from the client, shortened for echoing back in a message.
pub fn clip(name: &str) -> String {
    const LIMIT: usize = 100;
    if name.chars().count() > LIMIT {
        let cut: String = name.chars().take(LIMIT).collect();
        format!("{cut}…")
    } else {
        name.to_owned()
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("postcode", "postal_code"), 3);
    }

    #[test]
    fn a_close_name_is_suggested_and_a_far_one_is_not() {
        let names = ["street_1", "postal_code", "city"];
        assert_eq!(closest("stret_1", names), Some("street_1"));
        assert_eq!(closest("CITY", names), Some("city"));
        assert_eq!(closest("colour", names), None);
    }
}
