//! English plurals for the counts the command prints.

/// `n` and the noun, plural unless `n` is 1: `1 node`, `2 nodes`, `0 nodes`.
pub fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(count(1u64, "node"), "1 node");
        assert_eq!(count(0u64, "node"), "0 nodes");
        assert_eq!(count(2u64, "node"), "2 nodes");
    }
}
