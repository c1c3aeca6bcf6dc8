//! Property tests: every proof verifies, a mutated proof or root does not, and privet's trees
//! and proofs agree byte for byte with the independent `ct-merkle` crate.

#![allow(clippy::unwrap_used)]

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use privet_audit::merkle::leaf_hash;
use privet_audit::{Hash, MerkleTree};
use proptest::prelude::*;
use sha2::Sha256;

fn leaves(n: usize, salt: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut v = (i as u32).to_be_bytes().to_vec();
            v.push(salt);
            v.extend(std::iter::repeat_n(salt, i % 7));
            v
        })
        .collect()
}

fn ours(data: &[Vec<u8>]) -> MerkleTree {
    MerkleTree::from_leaf_hashes(data.iter().map(|d| leaf_hash(d)))
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut b = h.0;
    b[(bit / 8) % 32] ^= 1 << (bit % 8);
    Hash(b)
}

fn concat(path: &[Hash]) -> Vec<u8> {
    path.iter().flat_map(|h| h.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inclusion_proofs_verify_and_mutations_fail(
        n in 1usize..300, pick in any::<u64>(), bit in 0usize..256, salt in any::<u8>(),
    ) {
        let data = leaves(n, salt);
        let t = ours(&data);
        let size = 1 + pick % n as u64;
        let index = (pick / 7) % size;
        let root = t.root_at(size).unwrap();
        let leaf = leaf_hash(&data[index as usize]);
        let proof = t.inclusion_proof(index, size).unwrap();
        prop_assert!(proof.verify(&leaf, &root).is_ok());
        // A mutated root, leaf or path hash fails.
        prop_assert!(proof.verify(&leaf, &flip(&root, bit)).is_err());
        prop_assert!(proof.verify(&flip(&leaf, bit), &root).is_err());
        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            let i = bit % bad.path.len();
            bad.path[i] = flip(&bad.path[i], bit);
            prop_assert!(bad.verify(&leaf, &root).is_err());
            let mut short = proof.clone();
            short.path.pop();
            prop_assert!(short.verify(&leaf, &root).is_err());
        }
        // Another index fails (unless the tree has one leaf).
        if size > 1 {
            let mut moved = proof.clone();
            moved.index = (index + 1) % size;
            prop_assert!(moved.verify(&leaf, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_mutations_fail(
        n in 1usize..300, a in any::<u64>(), b in any::<u64>(), bit in 0usize..256, salt in any::<u8>(),
    ) {
        let data = leaves(n, salt);
        let t = ours(&data);
        let new = 1 + a % n as u64;
        let old = b % (new + 1);
        let (old_root, new_root) = (t.root_at(old).unwrap(), t.root_at(new).unwrap());
        let proof = t.consistency_proof(old, new).unwrap();
        prop_assert!(proof.verify(&old_root, &new_root).is_ok());
        if old > 0 && old < new {
            prop_assert!(proof.verify(&flip(&old_root, bit), &new_root).is_err());
            prop_assert!(proof.verify(&old_root, &flip(&new_root, bit)).is_err());
            let mut bad = proof.clone();
            let i = bit % bad.path.len();
            bad.path[i] = flip(&bad.path[i], bit);
            prop_assert!(bad.verify(&old_root, &new_root).is_err());
            // A history that differs in one old leaf is not consistent with the new root.
            let mut forked = data.clone();
            forked[bit % old as usize].push(0xff);
            let f = ours(&forked);
            prop_assert!(proof.verify(&f.root_at(old).unwrap(), &new_root).is_err());
        }
    }

    #[test]
    fn proofs_agree_with_ct_merkle(n in 1usize..200, pick in any::<u64>(), salt in any::<u8>()) {
        let data = leaves(n, salt);
        let t = ours(&data);
        let mut reference: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
        for d in &data {
            reference.push(d.clone());
        }
        let root = reference.root();
        let our_root = t.root();
        prop_assert_eq!(root.as_bytes().as_slice(), our_root.0.as_slice());

        let index = pick % n as u64;
        let theirs = reference.prove_inclusion(index as usize);
        let mine = t.inclusion_proof(index, n as u64).unwrap();
        let bytes = concat(&mine.path);
        prop_assert_eq!(theirs.as_bytes(), bytes.as_slice());
        // ct-merkle's verifier accepts privet's proof.
        let as_theirs = ct_merkle::InclusionProof::<Sha256>::try_from_bytes(concat(&mine.path)).unwrap();
        prop_assert!(root.verify_inclusion(&data[index as usize], index, &as_theirs).is_ok());

        let additions = (pick / 3) % n as u64;
        let old = n as u64 - additions;
        let theirs = reference.prove_consistency(additions as usize);
        let mine = t.consistency_proof(old, n as u64).unwrap();
        let bytes = concat(&mine.path);
        prop_assert_eq!(theirs.as_bytes(), bytes.as_slice());
        let old_root = ct_merkle::RootHash::<Sha256>::new(
            t.root_at(old).unwrap().0.into(),
            old,
        );
        let as_theirs = ct_merkle::ConsistencyProof::<Sha256>::try_from_bytes(concat(&mine.path)).unwrap();
        prop_assert!(root.verify_consistency(&old_root, &as_theirs).is_ok());
    }
}
