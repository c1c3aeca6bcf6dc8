//! Errors to exit codes and one clear line.
//!
//! | code | meaning |
//! |---|---|
//! | 1 | the run itself failed (training diverged, no round completed, output not writable) |
//! | 2 | bad command line or job file (clap also uses 2) |
//! | 3 | bad data file (CSV) |
//! | 4 | bad or unreadable model file |
//! | 5 | unusable certificates or keys |
//! | 6 | the coordinator (or PJC peer) is unreachable, refused the request, or broke the protocol |
//!
//! Internal failures (a panicked task, a database that fails mid-run) are 1, never 2.

use privet_audit::AuditError;
use privet_coordinator::CoordinatorError;
use privet_data::DataError;
use privet_files::FileError;
use privet_identity::IdentityError;
use privet_job::JobError;
use privet_ml::MlError;
use privet_node::NodeError;
use privet_sim::SimError;
use privet_transport::TransportError;

/// The exit code for an error.
pub fn code(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<SimError>() {
        return match e {
            SimError::Job(j) => job_code(j),
            SimError::Config(_) => 2,
            SimError::Data(_) => 3,
            SimError::Ml(m) => ml_code(m),
            _ => 1,
        };
    }
    if let Some(e) = err.downcast_ref::<JobError>() {
        return job_code(e);
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
    if let Some(e) = err.downcast_ref::<privet_psi_service::ServiceError>() {
        use privet_psi_service::ServiceError as S;
        return match e {
            S::Config(_) | S::Listen { .. } => 2,
            S::Files(f) => files_code(f),
            S::Transport(t) => transport_code(t),
            S::Psi(p) => psi_code(p),
            S::Remote(_) => 6,
            _ => 1,
        };
    }
    if let Some(e) = err.downcast_ref::<privet_psi::PsiError>() {
        return psi_code(e);
    }
    if let Some(e) = err.downcast_ref::<CoordinatorError>() {
        return match e {
            CoordinatorError::Config(_) | CoordinatorError::Listen { .. } => 2,
            CoordinatorError::Audit(a) => audit_code(a),
            CoordinatorError::Job(j) => job_code(j),
            CoordinatorError::Data(_) => 3,
            CoordinatorError::Ml(m) => ml_code(m),
            CoordinatorError::Files(f) => files_code(f),
            CoordinatorError::Identity(i) => identity_code(i),
            CoordinatorError::Transport(t) => transport_code(t),
            CoordinatorError::Remote(_) | CoordinatorError::Protocol(_) => 6,
            CoordinatorError::Wire(_) => 6,
            CoordinatorError::Io { .. } => 1,
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
    if let Some(e) = err.downcast_ref::<NodeError>() {
        return match e {
            NodeError::Config(_) => 2,
            NodeError::Job(j) => job_code(j),
            NodeError::Data(_) => 3,
            NodeError::Ml(m) => ml_code(m),
            NodeError::Files(f) => files_code(f),
            NodeError::Identity(i) => identity_code(i),
            NodeError::Transport(t) => transport_code(t),
            NodeError::Refused(_) | NodeError::Session(_) | NodeError::Wire(_) => 6,
            NodeError::Audit(_) => 6,
            NodeError::Agreement(a) => audit_code(a),
            _ => 1,
        };
    }
    if let Some(e) = err.downcast_ref::<IdentityError>() {
        return identity_code(e);
    }
    if let Some(e) = err.downcast_ref::<TransportError>() {
        return transport_code(e);
    }
    if let Some(e) = err.downcast_ref::<FileError>() {
        return files_code(e);
    }
    if let Some(e) = err.downcast_ref::<AuditError>() {
        return audit_code(e);
    }
    if let Some(e) = err.downcast_ref::<privet_he_service::HeServiceError>() {
        return he_code(e);
    }
    if err.downcast_ref::<privet_he::HeError>().is_some() {
        return 1;
    }
    1
}

/// A malformed agreement is a bad config (2), a malformed log or head file bad data (3), a key
/// that is no party's a key problem (5); a signature missing or not matching, a failed proof
/// and a log whose history was changed are a failed check (1).
fn audit_code(e: &AuditError) -> u8 {
    match e {
        AuditError::Files(f) => files_code(f),
        AuditError::Identity(i) => identity_code(i),
        AuditError::Agreement { .. } | AuditError::Invalid(_) => 2,
        AuditError::LogFile { .. } | AuditError::HeadFile { .. } => 3,
        AuditError::NotAParty { .. } => 5,
        _ => 1,
    }
}

fn he_code(e: &privet_he_service::HeServiceError) -> u8 {
    use privet_he_service::HeServiceError as E;
    match e {
        E::Model(_) => 4,
        E::Ml(m) => ml_code(m),
        E::Config(_) => 2,
        E::Keys(_) => 5,
        E::File(f) => files_code(f),
        E::Transport(t) => transport_code(t),
        E::Remote(_) | E::Protocol(_) => 6,
        _ => 1,
    }
}

/// A file that cannot be read or parsed is a bad command line or config (2); one that cannot
/// be written is a failed run (1).
fn files_code(e: &FileError) -> u8 {
    match e {
        FileError::Toml { .. } | FileError::TooLarge { .. } | FileError::NotText { .. } => 2,
        FileError::NotRegular { .. } => 2,
        _ if e.is_disk_full() => 1,
        _ => 2,
    }
}

fn identity_code(e: &IdentityError) -> u8 {
    match e {
        IdentityError::BadName { .. } | IdentityError::Invalid(_) => 2,
        IdentityError::Files(f) => files_code(f),
        _ => 5,
    }
}

fn transport_code(e: &TransportError) -> u8 {
    match e {
        TransportError::Identity(i) => identity_code(i),
        TransportError::Tls(_) => 5,
        TransportError::Config(_) => 2,
        _ => 6,
    }
}

fn psi_code(e: &privet_psi::PsiError) -> u8 {
    use privet_psi::PsiError as P;
    match e {
        P::Config(_) | P::Dp(_) => 2,
        P::Csv { .. } | P::Input(_) => 3,
        P::InvalidMessage(_) | P::PeerMisbehaved(_) | P::PeerAborted(_) | P::Decrypt(_) => 6,
        _ => 1,
    }
}

/// A bad job file is a bad command line (2), whatever else it leads to.
fn job_code(e: &JobError) -> u8 {
    match e {
        JobError::Ml(m) => ml_code(m),
        JobError::Fl(_) | JobError::SecAgg(_) => 1,
        _ => 2,
    }
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
