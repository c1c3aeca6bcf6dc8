//! The real datasets: shapes, classes, encoding, partitions.
//!
//! breast_cancer, digits and wine are in the repository's `data/`. adult.csv is not (its licence
//! terms keep it out of the repository); it is read from `../shared/data` beside the repository
//! when present and its tests are skipped otherwise.

use std::path::{Path, PathBuf};
use std::time::Instant;

use privet_data::{
    Column, CsvOptions, Encoder, FeatureEncoding, PartitionScheme, load_csv, partition,
    train_test_split,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

fn adult_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/adult.csv");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

const ADULT_CATEGORICAL: [&str; 8] = [
    "type_employer",
    "education",
    "marital",
    "occupation",
    "relationship",
    "race",
    "sex",
    "country",
];

#[test]
fn bundled_datasets_have_the_documented_shapes() {
    for (file, label, rows, cols, classes) in [
        ("breast_cancer.csv", "benign", 569, 30, 2),
        ("digits.csv", "digit", 1797, 64, 10),
        ("wine.csv", "cultivar", 178, 13, 3),
    ] {
        let table = load_csv(&data(file), &CsvOptions::new(label)).unwrap();
        assert_eq!(table.num_rows(), rows, "{file}");
        assert_eq!(table.columns.len(), cols, "{file}");
        assert!(
            table
                .columns
                .iter()
                .all(|c| matches!(c, Column::Numeric { .. }))
        );
        let (train, test) = train_test_split(rows, 0.2, 1).unwrap();
        assert_eq!(train.len() + test.len(), rows);
        let enc = Encoder::fit(&table, &train).unwrap();
        assert_eq!(enc.num_classes(), classes, "{file}");
        assert_eq!(enc.output_dim(), cols);
        let ds = enc.dataset(&table).unwrap();
        assert_eq!((ds.x.rows, ds.x.cols, ds.len()), (rows, cols, rows));
        assert!(ds.x.data.iter().all(|v| v.is_finite()));
        // Standardized on the training rows: mean ~0 and population std ~1 there.
        for j in 0..cols {
            let vals: Vec<f64> = train.iter().map(|&r| f64::from(ds.x.row(r)[j])).collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            assert!(mean.abs() < 1e-4, "{file} col {j} mean {mean}");
            assert!(
                var < 1e-9 || (var - 1.0).abs() < 1e-3,
                "{file} col {j} var {var}"
            );
        }
    }
}

#[test]
fn digits_labels_map_numerically() {
    let table = load_csv(&data("digits.csv"), &CsvOptions::new("digit")).unwrap();
    let enc = Encoder::fit(&table, &[0, 1, 2]).unwrap();
    let names: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    assert_eq!(enc.label_names, names);
    let y = enc.encode_labels(&table).unwrap();
    let raw = table.labels.as_ref().unwrap();
    for (code, name) in y.iter().zip(raw) {
        assert_eq!(code.to_string(), *name);
    }
}

#[test]
fn natural_partition_by_a_dropped_column() {
    // Partition wine by a column that is not a feature: bin `magnesium` into keys.
    let table = load_csv(
        &data("wine.csv"),
        &CsvOptions::new("cultivar").with_drop(["ash"]),
    )
    .unwrap();
    assert_eq!(table.columns.len(), 12);
    assert!(table.column("ash").is_none());
    let keys = table.raw_column("ash").unwrap();
    assert_eq!(keys.len(), 178);
    let labels = vec![0u32; 178];
    let scheme = PartitionScheme::Natural {
        column: "ash".into(),
    };
    let p = partition(&scheme, &labels, 1, 0, Some(&keys), 0).unwrap();
    let distinct = privet_data::natural_client_keys(&keys);
    assert_eq!(p.num_clients(), distinct.len());
    for (i, key) in distinct.iter().enumerate() {
        assert!(p.client(i).iter().all(|&r| keys[r as usize] == *key));
    }
    assert_eq!(p.total_rows(), 178);
}

#[test]
fn adult_encodes_and_partitions() {
    let Some(path) = adult_path() else {
        return;
    };
    let opts = CsvOptions::new("income").with_categorical(ADULT_CATEGORICAL);
    let start = Instant::now();
    let table = load_csv(&path, &opts).unwrap();
    let loaded = start.elapsed();
    assert_eq!(table.num_rows(), 30_162);
    let (train, test) = train_test_split(table.num_rows(), 0.2, 42).unwrap();
    assert_eq!((train.len(), test.len()), (24_130, 6_032));
    let enc = Encoder::fit(&table, &train).unwrap();
    let ds = enc.dataset(&table).unwrap();
    eprintln!(
        "adult: load {loaded:?}, load + fit + encode {:?} (debug build numbers are slow)",
        start.elapsed()
    );

    let categories: usize = enc
        .features
        .iter()
        .map(|f| match f {
            FeatureEncoding::OneHot { categories, .. } => categories.len(),
            FeatureEncoding::Standardize { .. } => 0,
        })
        .sum();
    let numeric = enc
        .features
        .iter()
        .filter(|f| matches!(f, FeatureEncoding::Standardize { .. }))
        .count();
    assert_eq!(numeric, 6);
    assert_eq!(enc.output_dim(), 6 + categories);
    assert_eq!(ds.x.cols, enc.output_dim());
    assert_eq!(enc.feature_names().len(), enc.output_dim());
    assert!(enc.feature_names().contains(&"sex=Female".to_string()));
    assert_eq!(enc.label_names, ["<=50K", ">50K"]);
    let raw = table.labels.as_ref().unwrap();
    for (code, name) in ds.y.iter().zip(raw) {
        assert_eq!(*code, u32::from(name == ">50K"));
    }
    // Each row has exactly one 1 per categorical column seen in training (or none if unseen).
    for r in 0..ds.len() {
        let ones = ds.x.row(r)[..].iter().filter(|&&v| v == 1.0).count();
        assert!(ones <= 8 + 6);
    }

    // The Dirichlet request the benchmarks use.
    let train_labels: Vec<u32> = train.iter().map(|&r| ds.y[r]).collect();
    let start = Instant::now();
    let p = partition(
        &PartitionScheme::Dirichlet {
            alpha: 0.5,
            min_rows: 10,
        },
        &train_labels,
        2,
        100,
        None,
        42,
    )
    .unwrap();
    eprintln!(
        "adult Dirichlet(0.5) over 100 clients: {:?}",
        start.elapsed()
    );
    assert!(start.elapsed().as_secs_f64() < 5.0);
    assert_eq!(p.num_clients(), 100);
    assert!(p.sizes().iter().all(|&s| s >= 10));
    assert_eq!(p.total_rows(), 24_130);

    // Natural partition by a categorical feature column.
    let keys = table.raw_column("race").unwrap();
    let p = partition(
        &PartitionScheme::Natural {
            column: "race".into(),
        },
        &ds.y,
        2,
        0,
        Some(&keys),
        0,
    )
    .unwrap();
    assert_eq!(p.num_clients(), 5);
}
