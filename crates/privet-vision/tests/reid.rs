//! Privacy checked by attack (fast version; bench/vision has the fuller figures): a classifier
//! trained on obfuscated pictures of five generated people re-identifies blurred and pixelated
//! faces far above chance (20%), solid-filled ones well below them (but not at chance: the
//! benchmark measures 2-3x chance), and removed ones at about chance.

#![allow(clippy::unwrap_used)]

use privet_vision::Mode;
use privet_vision::reid::{AttackConfig, attack};

#[test]
fn blur_and_pixelation_leak_identity_solid_and_removal_do_not() {
    let cfg = AttackConfig {
        identities: 5,
        train_per_identity: 24,
        test_per_identity: 16,
        seed: 11,
        mask_scale: 1.3,
    };
    let clear = attack(&cfg, None).unwrap();
    let blur = attack(&cfg, Some(Mode::Blur)).unwrap();
    let pixelate = attack(&cfg, Some(Mode::Pixelate)).unwrap();
    let solid = attack(&cfg, Some(Mode::Solid)).unwrap();
    let remove = attack(&cfg, Some(Mode::Remove)).unwrap();
    eprintln!(
        "top-1 re-identification: clear {clear:.2}, blur {blur:.2}, pixelate {pixelate:.2}, solid {solid:.2}, remove {remove:.2} (chance 0.20)"
    );
    assert!(clear > 0.9, "clear {clear}");
    assert!(blur > 0.6, "blur {blur}");
    assert!(pixelate > 0.6, "pixelate {pixelate}");
    // 80 test pictures: chance is 0.20; 0.40 is far beyond what guessing reaches.
    assert!(solid < 0.4, "solid {solid}");
    assert!(remove < 0.4, "remove {remove}");
}
