//! Classifier throughput over the fixture corpus (`sql-fixtures/classify/*.sql`), one
//! thread: the lexer path (statements the hand-written lexer decides, the hot path;
//! target >= 2 M statements/s in release), the whole corpus, and sqlparser's
//! `tables()` over the same statements for scale. Prints the share of the corpus
//! that needed the sqlparser fallback.
//!
//! `cargo bench --bench classify -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tandem::mysql::classify::{self, corpus, Decider};

/// Every corpus case, in file name order.
fn load() -> Vec<corpus::Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql-fixtures/classify");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("sql-fixtures/classify")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("fixture");
        let name = path.display().to_string();
        cases.extend(corpus::parse(&name, &text).expect("valid fixture"));
    }
    cases
}

fn classify_all(cases: &[&corpus::Case]) {
    for case in cases {
        black_box(classify::classify(black_box(&case.sql), &case.options()));
    }
}

fn bench(c: &mut Criterion) {
    let cases = load();
    let all: Vec<&corpus::Case> = cases.iter().collect();
    let decided = |d: Decider| {
        all.iter()
            .copied()
            .filter(|k| classify::classify(&k.sql, &k.options()).decided_by == d)
            .collect::<Vec<_>>()
    };
    let lexer = decided(Decider::Lexer);
    let parser = decided(Decider::Parser);
    let unknown = decided(Decider::Unknown);
    let share = |n: usize| n as f64 * 100.0 / all.len() as f64;
    println!(
        "corpus: {} statements; decided by lexer {} ({:.1}%), sqlparser fallback {} ({:.1}%), \
         not understood {} ({:.1}%)",
        all.len(),
        lexer.len(),
        share(lexer.len()),
        parser.len(),
        share(parser.len()),
        unknown.len(),
        share(unknown.len()),
    );

    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(lexer.len() as u64));
    g.bench_function("lexer_path", |b| b.iter(|| classify_all(&lexer)));
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("whole_corpus", |b| b.iter(|| classify_all(&all)));
    g.bench_function("sqlparser_tables", |b| {
        b.iter(|| {
            for case in &all {
                black_box(classify::tables(black_box(&case.sql), &case.options()));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
