//! Malformed CSV files: each must fail with the right variant and a message that names the file,
//! the 1-based line (header = line 1) and the column where relevant.

use std::path::PathBuf;

use privet_data::{CsvOptions, DataError, load_csv};

/// Writes `content` to `<tempdir>/<name>.csv`, loads it with `opts`, and checks that the error
/// matches `is_expected` and that its message contains the file name and every fragment.
fn check(
    name: &str,
    content: &str,
    opts: &CsvOptions,
    is_expected: fn(&DataError) -> bool,
    fragments: &[&str],
) -> DataError {
    let dir = tempfile::tempdir().expect("tempdir");
    let file_name = format!("{name}.csv");
    let path: PathBuf = dir.path().join(&file_name);
    std::fs::write(&path, content).expect("write csv");
    let err = match load_csv(&path, opts) {
        Ok(t) => panic!("{name}: expected an error, loaded {} rows", t.num_rows()),
        Err(e) => e,
    };
    assert!(is_expected(&err), "{name}: unexpected variant {err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&file_name),
        "{name}: message lacks the file name: {msg}"
    );
    for f in fragments {
        assert!(msg.contains(f), "{name}: message lacks `{f}`: {msg}");
    }
    err
}

fn opts() -> CsvOptions {
    CsvOptions::new("y")
}

#[test]
fn ragged_row() {
    check(
        "ragged",
        "a,b,y\n1,2,0\n3,1\n",
        &opts(),
        |e| {
            matches!(
                e,
                DataError::Ragged {
                    line: 3,
                    expected: 3,
                    found: 2,
                    ..
                }
            )
        },
        &["line 3", "expected 3 fields", "found 2"],
    );
    // Too many fields is ragged too.
    check(
        "ragged_long",
        "a,b,y\n1,2,0\n1,2,0\n1,2,0,9\n",
        &opts(),
        |e| {
            matches!(
                e,
                DataError::Ragged {
                    line: 4,
                    found: 4,
                    ..
                }
            )
        },
        &["line 4"],
    );
}

#[test]
fn non_numeric_value() {
    let err = check(
        "not_numeric",
        "age,hours,y\n39,40,0\n50,13,1\n38,abc,0\n",
        &opts(),
        |e| matches!(e, DataError::NotNumeric { line: 4, .. }),
        &["line 4", "column `hours`", "expected a number, found `abc`"],
    );
    let DataError::NotNumeric { column, value, .. } = err else {
        unreachable!()
    };
    assert_eq!((column.as_str(), value.as_str()), ("hours", "abc"));
    for bad in ["nan", "inf", "-inf", "NaN"] {
        check(
            "nan",
            &format!("a,y\n{bad},0\n"),
            &opts(),
            |e| matches!(e, DataError::NotNumeric { line: 2, .. }),
            &["line 2", "column `a`", bad],
        );
    }
}

#[test]
fn missing_label_column() {
    let err = check(
        "no_label",
        "a,b,c\n1,2,3\n",
        &CsvOptions::new("income"),
        |e| matches!(e, DataError::MissingLabel { .. }),
        &["line 1", "`income`", "`a`, `b`, `c`"],
    );
    let DataError::MissingLabel { available, .. } = err else {
        unreachable!()
    };
    assert_eq!(available, ["a", "b", "c"]);
}

#[test]
fn empty_file_and_header_only() {
    check(
        "empty",
        "",
        &opts(),
        |e| matches!(e, DataError::Empty { .. }),
        &["no header row or no data rows"],
    );
    check(
        "blank_lines",
        "\n\n\n",
        &opts(),
        |e| matches!(e, DataError::Empty { .. }),
        &[],
    );
    check(
        "header_only",
        "a,b,y\n",
        &opts(),
        |e| matches!(e, DataError::Empty { .. }),
        &["no data rows"],
    );
}

#[test]
fn empty_numeric_cell() {
    check(
        "empty_cell",
        "a,b,y\n1,2,0\n1,,0\n",
        &opts(),
        |e| matches!(e, DataError::EmptyValue { line: 3, column, .. } if column == "b"),
        &["line 3", "column `b`", "empty"],
    );
    // Whitespace only counts as empty.
    check(
        "blank_cell",
        "a,b,y\n1,  ,0\n",
        &opts(),
        |e| matches!(e, DataError::EmptyValue { line: 2, .. }),
        &["line 2", "column `b`"],
    );
    // An empty label too.
    check(
        "empty_label",
        "a,y\n1,0\n2,\n",
        &opts(),
        |e| matches!(e, DataError::EmptyValue { line: 3, column, .. } if column == "y"),
        &["line 3", "column `y`"],
    );
}

#[test]
fn unknown_configured_columns() {
    check(
        "unknown_categorical",
        "a,colour,y\n1,red,0\n",
        &opts().with_categorical(["color"]),
        |e| matches!(e, DataError::UnknownColumn { column, .. } if column == "color"),
        &["line 1", "column `color`"],
    );
    check(
        "unknown_drop",
        "a,y\n1,0\n",
        &opts().with_drop(["id"]),
        |e| matches!(e, DataError::UnknownColumn { column, .. } if column == "id"),
        &["column `id`"],
    );
}

#[test]
fn duplicate_header_and_limits() {
    check(
        "dup",
        "a,b,a,y\n1,2,3,0\n",
        &opts(),
        |e| matches!(e, DataError::DuplicateColumn { column, .. } if column == "a"),
        &["line 1", "column `a`"],
    );
    check(
        "rows",
        "a,y\n1,0\n2,0\n3,0\n",
        &opts().with_max_rows(2),
        |e| matches!(e, DataError::TooLarge { limit: 2, .. }),
        &["2 data rows"],
    );
    check(
        "bytes",
        "a,y\n1,0\n2,0\n3,0\n",
        &opts().with_max_bytes(8),
        |e| matches!(e, DataError::TooLarge { limit: 8, .. }),
        &["8 bytes"],
    );
}

#[test]
fn categorical_column_accepts_text_and_numeric_rejects_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mixed.csv");
    std::fs::write(&path, "a,colour,y\n1,red,0\n2,blue,1\n").expect("write");
    let t = load_csv(&path, &opts().with_categorical(["colour"])).expect("load");
    assert_eq!(t.num_rows(), 2);
    check(
        "mixed",
        "a,colour,y\n1,red,0\n2,blue,1\n",
        &opts(),
        |e| matches!(e, DataError::NotNumeric { line: 2, .. }),
        &["line 2", "column `colour`", "`red`"],
    );
}
