//! Errors to exit codes and one clear line.
//!
//! | code | meaning |
//! |---|---|
//! | 1 | the run itself failed (training diverged, no round completed, output not writable) |
//! | 2 | bad command line or job file (clap also uses 2) |
//! | 3 | bad data file (CSV) |
//! | 4 | bad or unreadable model file |
//! | 5 | unusable certificates or keys |
//! | 6 | the coordinator is unreachable, refused the request, or broke the protocol |

use privet_data::DataError;
use privet_ml::MlError;
use privet_net::NetError;
use privet_sim::SimError;

/// The exit code for an error.
pub fn code(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<SimError>() {
        return match e {
            SimError::Io { .. } | SimError::JobFile { .. } | SimError::Config(_) => 2,
            SimError::Data(_) => 3,
            SimError::Ml(m) => ml_code(m),
            _ => 1,
        };
    }
    if let Some(e) = err.downcast_ref::<MlError>() {
        return ml_code(e);
    }
    if err.downcast_ref::<DataError>().is_some() {
        return 3;
    }
    if err.downcast_ref::<privet_dp::DpError>().is_some() {
        return 2;
    }
    if let Some(e) = err.downcast_ref::<NetError>() {
        return match e {
            NetError::Config(_) | NetError::Io { .. } | NetError::Job(_) => 2,
            NetError::Data(_) => 3,
            NetError::Tls(_) => 5,
            NetError::Connect { .. } | NetError::Remote(_) | NetError::Protocol(_) => 6,
            _ => 1,
        };
    }
    if let Some(e) = err.downcast_ref::<privet_vision::VisionError>() {
        use privet_vision::VisionError as V;
        return match e {
            V::InvalidConfig(_) => 2,
            V::Decode(_) | V::TooLarge { .. } | V::BadBoxes(_) | V::FrameSize { .. } => 3,
            V::BadModel(_) => 4,
            _ => 1,
        };
    }
    if let Some(e) = err.downcast_ref::<privet_media::MediaError>() {
        use privet_media::MediaError as M;
        return match e {
            M::BadInput { .. } | M::TooLarge { .. } => 3,
            _ => 1,
        };
    }
    1
}

fn ml_code(e: &MlError) -> u8 {
    match e {
        MlError::Io { .. } | MlError::BadModelFile { .. } => 4,
        MlError::Data(_) => 3,
        MlError::InvalidConfig(_) => 2,
        _ => 1,
    }
}

/// The error and its causes on one line, without repeating a cause that the message already
/// contains.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line.replace('\n', " ")
}
