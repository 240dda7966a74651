//! The README's library example is `examples/usage.rs`: it runs, and the README shows it as
//! it is.

#[path = "../examples/usage.rs"]
mod usage;

#[test]
fn the_readme_example_runs() {
    usage::main().unwrap();
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let example = include_str!("../examples/usage.rs");
    let readme = include_str!("../README.md");
    let uses: Vec<&str> = example
        .lines()
        .skip_while(|l| !l.starts_with("use "))
        .take_while(|l| !l.starts_with("pub fn main"))
        .collect();
    let body: Vec<String> = example
        .lines()
        .skip_while(|l| !l.contains("// README begin"))
        .skip(1)
        .take_while(|l| !l.contains("// README end"))
        .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string())
        .collect();
    let expected = format!(
        "```rust\n{}\n\n{}\n```",
        uses.join("\n").trim_end(),
        body.join("\n")
    );
    assert!(
        readme.contains(&expected),
        "README.md must show examples/usage.rs as it is:\n{expected}"
    );
}
