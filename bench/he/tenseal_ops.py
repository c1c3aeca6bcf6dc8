"""Times SEAL's CKKS operations through TenSEAL 0.3.18 (its sealapi bindings and its CKKSVector),
at the parameters given, and prints one JSON line (microseconds, median of repetitions): "us" is
wall-clock time, "cpu_us" the calling thread's CPU time (SEAL runs these operations on it)."""
import json
import statistics
import sys
import time

import tenseal as ts
import tenseal.sealapi as sealapi


def timed(reps, f):
    """(median wall-clock time, median thread CPU time), in microseconds."""
    wall, cpu = [], []
    for _ in range(reps):
        c = time.thread_time()
        t = time.perf_counter()
        f()
        wall.append((time.perf_counter() - t) * 1e6)
        cpu.append((time.thread_time() - c) * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def main():
    log_n = int(sys.argv[1])
    bits = [int(x) for x in sys.argv[2].split(",")]
    reps = int(sys.argv[3])
    n = 1 << log_n
    scale = 2.0**40
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(sealapi.CoeffModulus.Create(n, bits))
    ctx = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    keygen = sealapi.KeyGenerator(ctx)
    sk = keygen.secret_key()
    t_sk = timed(reps, lambda: sealapi.KeyGenerator(ctx))
    pk = sealapi.PublicKey()
    t_pk = timed(reps, lambda: keygen.create_public_key(pk))
    rk = sealapi.RelinKeys()
    t_rk = timed(reps, lambda: keygen.create_relin_keys(rk))
    gk = sealapi.GaloisKeys()
    t_gk = timed(reps, lambda: keygen.create_galois_keys([3], gk))
    encoder = sealapi.CKKSEncoder(ctx)
    encryptor = sealapi.Encryptor(ctx, pk)
    sym = sealapi.Encryptor(ctx, sk)
    decryptor = sealapi.Decryptor(ctx, sk)
    ev = sealapi.Evaluator(ctx)
    import math
    vals = [math.sin(i * 0.01) for i in range(n // 2)]
    pt = sealapi.Plaintext()
    t_encode = timed(reps, lambda: encoder.encode(vals, scale, pt))
    a = sealapi.Ciphertext(ctx)
    b = sealapi.Ciphertext(ctx)
    t_enc_pk = timed(reps, lambda: encryptor.encrypt(pt, a))
    t_enc_sk = timed(reps, lambda: sym.encrypt_symmetric(pt, a))
    encryptor.encrypt(pt, a)
    encryptor.encrypt(pt, b)
    out_pt = sealapi.Plaintext()

    def dec():
        decryptor.decrypt(a, out_pt)
        return encoder.decode_double(out_pt)

    t_dec = timed(reps, dec)
    dst = sealapi.Ciphertext(ctx)
    t_add = timed(reps, lambda: ev.add(a, b, dst))
    t_mul_plain = timed(reps, lambda: ev.multiply_plain(a, pt, dst))
    t_mul = timed(reps, lambda: ev.multiply(a, b, dst))
    c3 = sealapi.Ciphertext(ctx)
    ev.multiply(a, b, c3)
    t_relin = timed(reps, lambda: ev.relinearize(c3, rk, dst))

    def mul_relin():
        ev.multiply(a, b, dst)
        ev.relinearize_inplace(dst, rk)

    t_mul_relin = timed(reps, mul_relin)
    c2 = sealapi.Ciphertext(ctx)
    ev.relinearize(c3, rk, c2)
    t_rescale = timed(reps, lambda: ev.rescale_to_next(c2, dst))
    t_rotate = timed(reps, lambda: ev.rotate_vector(a, 1, gk, dst))

    # TenSEAL's own vector API on the same parameters (what its users call).
    tctx = ts.context(ts.SCHEME_TYPE.CKKS, n, coeff_mod_bit_sizes=bits)
    tctx.global_scale = scale
    tctx.generate_galois_keys()
    tctx.generate_relin_keys()
    v1 = ts.ckks_vector(tctx, vals)
    v2 = ts.ckks_vector(tctx, vals)
    ts_enc = timed(reps, lambda: ts.ckks_vector(tctx, vals))
    ts_dec = timed(reps, lambda: v1.decrypt())
    ts_add = timed(reps, lambda: v1 + v2)
    ts_mul_plain = timed(reps, lambda: v1 * vals)
    ts_mul = timed(reps, lambda: v1 * v2)
    ser = v1.serialize()
    # SEAL's own serialization of one fresh public-key ciphertext (its default compression).
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ct")
        a.save(path)
        seal_ct_bytes = os.path.getsize(path)
        sym = sealapi.Ciphertext(ctx)
        # encrypt_symmetric with a seed is what SEAL compresses to half size.
        sealapi.Encryptor(ctx, sk).encrypt_symmetric(pt, sym)
        sym.save(path)
        seal_sym_bytes = os.path.getsize(path)
    seal_ops = {
        "keygen_secret": t_sk, "keygen_public": t_pk, "keygen_relin": t_rk,
        "keygen_galois_one": t_gk, "encode": t_encode, "encrypt_public": t_enc_pk,
        "encrypt_symmetric": t_enc_sk, "decrypt_decode": t_dec, "add": t_add,
        "mul_plain": t_mul_plain, "mul": t_mul, "relinearize": t_relin,
        "mul_relin": t_mul_relin, "rescale": t_rescale, "rotate": t_rotate,
    }
    print(json.dumps({
        "impl": "seal-via-tenseal",
        "log_n": log_n,
        "bits": bits,
        "threads": 1,
        "us": {k: v[0] for k, v in seal_ops.items()},
        "cpu_us": {k: v[1] for k, v in seal_ops.items()},
        "tenseal_vector_us": {
            "encrypt": ts_enc[0], "decrypt": ts_dec[0], "add": ts_add[0],
            "mul_plain_rescale": ts_mul_plain[0], "mul_relin_rescale": ts_mul[0],
        },
        "tenseal_vector_bytes": len(ser),
        "ciphertext_bytes": {"public": seal_ct_bytes, "symmetric": seal_sym_bytes},
    }))


if __name__ == "__main__":
    main()
