//! What the benchmarks share: a deterministic random source, medians, and GNU time's report.

/// A small deterministic random source (xorshift).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The median (of an odd count; the upper middle of an even one).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The peak resident memory, MiB, in the report `/usr/bin/time -f %M -o FILE` wrote (0 when
/// there is none).
pub fn peak_mib(report: &std::path::Path) -> f64 {
    let kb: f64 = std::fs::read_to_string(report)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0.0);
    kb / 1024.0
}
