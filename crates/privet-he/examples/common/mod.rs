//! What the privet-he examples read from their command line alike.

/// `args[at]` as the ring's log2 degree (13 if absent) and `args[at + 1]` as the modulus chain's
/// comma-separated bit sizes (60,40,40,60 if absent).
pub fn ring(args: &[String], at: usize) -> Result<(u32, Vec<u32>), Box<dyn std::error::Error>> {
    let log_n: u32 = args.get(at).map(|s| s.parse()).transpose()?.unwrap_or(13);
    let bits: Vec<u32> = args
        .get(at + 1)
        .map(|s| {
            s.split(',')
                .map(|x| x.parse())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or(vec![60, 40, 40, 60]);
    Ok((log_n, bits))
}
