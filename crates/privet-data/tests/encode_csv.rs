//! Encoder behaviour on a small CSV, end to end: fitted on the training rows only.

use privet_data::{CsvOptions, DataError, Encoder, FeatureEncoding, load_csv, parse_csv};

const CSV: &str = "\
age,colour,city,y
20,red,Oslo,no
30,blue,Rome,yes
40,red,Oslo,no
50,green,Rome,yes
1000,purple,Oslo,no
";

#[test]
fn fit_on_training_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.csv");
    std::fs::write(&path, CSV).unwrap();
    let opts = CsvOptions::new("y")
        .with_categorical(["colour"])
        .with_drop(["city"]);
    let table = load_csv(&path, &opts).unwrap();
    // Rows 0..4 are training rows; row 4 (age 1000, purple) is held out.
    let enc = Encoder::fit(&table, &[3, 0, 2, 1]).unwrap();

    // age over 20, 30, 40, 50: mean 35, population variance (225 + 25 + 25 + 225) / 4 = 125.
    let FeatureEncoding::Standardize { mean, std, .. } = &enc.features[0] else {
        panic!("age should be standardized")
    };
    assert_eq!(*mean, 35.0);
    assert!((std - 125f64.sqrt()).abs() < 1e-12);
    assert_eq!(
        enc.features[1],
        FeatureEncoding::OneHot {
            name: "colour".into(),
            categories: vec!["blue".into(), "green".into(), "red".into()],
        }
    );
    assert_eq!(
        enc.feature_names(),
        ["age", "colour=blue", "colour=green", "colour=red"]
    );
    assert_eq!(enc.label_names, ["no", "yes"]);

    let ds = enc.dataset(&table).unwrap();
    assert_eq!((ds.x.rows, ds.x.cols), (5, 4));
    let s = 125f64.sqrt() as f32;
    assert!((ds.x.row(0)[0] - (-15.0 / s)).abs() < 1e-6);
    assert_eq!(&ds.x.row(0)[1..], &[0.0, 0.0, 1.0]);
    assert_eq!(&ds.x.row(3)[1..], &[0.0, 1.0, 0.0]);
    // Unseen category in the held-out row encodes as zeros.
    assert_eq!(&ds.x.row(4)[1..], &[0.0, 0.0, 0.0]);
    assert_eq!(ds.y, [0, 1, 0, 1, 0]);

    // Round trip through JSON gives the same encoding.
    let json = serde_json::to_string_pretty(&enc).unwrap();
    let back: Encoder = serde_json::from_str(&json).unwrap();
    assert_eq!(back.transform(&table).unwrap(), ds.x);

    // Predict time: a file without the label, loaded with the encoder's options.
    let predict = parse_csv(
        "predict.csv",
        b"age,colour,city\n35,green,Oslo\n",
        &enc.csv_options(None).with_drop(["city"]),
    )
    .unwrap();
    let x = enc.transform(&predict).unwrap();
    assert_eq!(x.data, [0.0, 0.0, 1.0, 0.0]);
    let err = enc.encode_labels(&predict).unwrap_err();
    assert!(matches!(err, DataError::NoLabelColumn { .. }));
    assert!(err.to_string().contains("predict.csv"));

    // A label the encoder never saw.
    let unseen = parse_csv(
        "eval.csv",
        b"age,colour,city,y\n35,green,Oslo,no\n36,red,Rome,maybe\n",
        &opts,
    )
    .unwrap();
    let err = enc.encode_labels(&unseen).unwrap_err();
    assert!(matches!(&err, DataError::UnseenLabel { line: 3, label, .. } if label == "maybe"));
    let msg = err.to_string();
    assert!(msg.contains("eval.csv") && msg.contains("line 3"), "{msg}");

    // A file missing a column the encoder needs.
    let missing = parse_csv("m.csv", b"age,y\n1,no\n", &CsvOptions::new("y")).unwrap();
    let err = enc.transform(&missing).unwrap_err();
    assert!(matches!(&err, DataError::UnknownColumn { column, .. } if column == "colour"));
    assert!(err.to_string().contains("m.csv"));
}
