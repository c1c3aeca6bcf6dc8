//! RFC 6962 / RFC 9162 Merkle tree test vectors.
//!
//! Source: the Certificate Transparency reference vectors as kept by transparency-dev/merkle,
//! `testonly/constants.go` (leaf inputs, root hashes for every size 0-8, node hashes) and
//! `testonly/reference_test.go` (`TestRefInclusionProof`, `TestRefConsistencyProof`), which
//! carry over the vectors of google/certificate-transparency `cpp/merkletree/merkle_tree_test.cc`.

#![allow(clippy::unwrap_used)]

use privet_audit::merkle::{empty_root, leaf_hash};
use privet_audit::{ConsistencyProof, Hash, InclusionProof, MerkleTree};

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Root hashes by tree size, 0 to 8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// The leaf hashes (level 0 of `NodeHashes`).
const LEAF_HASHES: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
];

/// (leaf index, tree size, expected path).
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        2,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        1,
        2,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// (old size, new size, expected proof).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(s: &str) -> Hash {
    s.parse().unwrap()
}

fn tree(size: usize) -> MerkleTree {
    MerkleTree::from_leaf_hashes(
        LEAVES[..size]
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).unwrap())),
    )
}

#[test]
fn leaf_hashes_match_the_reference() {
    for (leaf, expected) in LEAVES.iter().zip(LEAF_HASHES) {
        assert_eq!(
            leaf_hash(&hex::decode(leaf).unwrap()),
            h(expected),
            "{leaf}"
        );
    }
}

#[test]
fn roots_of_every_size_match_the_reference() {
    assert_eq!(empty_root(), h(ROOTS[0]));
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(tree(size).root(), h(root), "size {size}");
        assert_eq!(
            tree(8).root_at(size as u64).unwrap(),
            h(root),
            "size {size}"
        );
    }
}

#[test]
fn inclusion_proofs_match_the_reference_and_verify() {
    for &(index, size, path) in INCLUSION {
        let proof = tree(8).inclusion_proof(index, size).unwrap();
        let expected: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(proof.path, expected, "{index} in {size}");
        let leaf = leaf_hash(&hex::decode(LEAVES[index as usize]).unwrap());
        proof.verify(&leaf, &h(ROOTS[size as usize])).unwrap();
        // The same proof against another size's root, or for another leaf, fails.
        let other = ROOTS[(size as usize % 8) + 1];
        if other != ROOTS[size as usize] {
            assert!(proof.verify(&leaf, &h(other)).is_err());
        }
        let wrong_leaf = leaf_hash(b"not a leaf");
        assert!(proof.verify(&wrong_leaf, &h(ROOTS[size as usize])).is_err());
    }
}

#[test]
fn consistency_proofs_match_the_reference_and_verify() {
    for &(old, new, path) in CONSISTENCY {
        let proof = tree(8).consistency_proof(old, new).unwrap();
        let expected: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(proof.path, expected, "{old} to {new}");
        proof
            .verify(&h(ROOTS[old as usize]), &h(ROOTS[new as usize]))
            .unwrap();
    }
}

#[test]
fn every_proof_over_the_reference_leaves_verifies() {
    let t = tree(8);
    for size in 1..=8u64 {
        let root = h(ROOTS[size as usize]);
        for index in 0..size {
            let leaf = t.leaf(index).unwrap();
            t.inclusion_proof(index, size)
                .unwrap()
                .verify(&leaf, &root)
                .unwrap();
        }
        for old in 0..=size {
            t.consistency_proof(old, size)
                .unwrap()
                .verify(&h(ROOTS[old as usize]), &root)
                .unwrap();
        }
    }
}

#[test]
fn malformed_proofs_are_refused_without_panicking() {
    let root = h(ROOTS[8]);
    let leaf = h(LEAF_HASHES[0]);
    let good = tree(8).inclusion_proof(0, 8).unwrap();
    let cases = [
        InclusionProof {
            index: 8,
            ..good.clone()
        },
        InclusionProof {
            size: 0,
            ..good.clone()
        },
        InclusionProof {
            path: good.path[..2].to_vec(),
            ..good.clone()
        },
        InclusionProof {
            path: [good.path.clone(), vec![root]].concat(),
            ..good.clone()
        },
        InclusionProof {
            path: vec![root; 200],
            ..good.clone()
        },
    ];
    for bad in cases {
        assert!(bad.verify(&leaf, &root).is_err(), "{bad:?}");
    }
    let good = tree(8).consistency_proof(6, 8).unwrap();
    let (r6, r8) = (h(ROOTS[6]), h(ROOTS[8]));
    let cases = [
        ConsistencyProof {
            old_size: 9,
            ..good.clone()
        },
        ConsistencyProof {
            path: vec![],
            ..good.clone()
        },
        ConsistencyProof {
            path: good.path[1..].to_vec(),
            ..good.clone()
        },
        ConsistencyProof {
            old_size: 8,
            ..good.clone()
        },
        ConsistencyProof {
            old_size: 0,
            ..good.clone()
        },
        ConsistencyProof {
            new_size: u64::MAX,
            ..good.clone()
        },
    ];
    for bad in cases {
        assert!(bad.verify(&r6, &r8).is_err(), "{bad:?}");
    }
    // Equal sizes need equal roots.
    let same = ConsistencyProof {
        old_size: 8,
        new_size: 8,
        path: vec![],
    };
    assert!(same.verify(&r8, &r8).is_ok());
    assert!(same.verify(&r6, &r8).is_err());
}
