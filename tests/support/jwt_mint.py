#!/usr/bin/env python3
"""jwt_mint.py: keys and tokens made by an independent JWT implementation
(Debian's python3-jwt on python3-cryptography), for the proxy's verifier
tests. Never the project's own code.

    jwt_mint.py keys OUTDIR          # OUTDIR/jwks.json (public), OUTDIR/private/*.pem, oct secret
    jwt_mint.py vectors OUTDIR       # keys + OUTDIR/tokens.json {name: token} for test_jwt.c
    jwt_mint.py token OUTDIR KID ALG CLAIMS_JSON [TTL_S]   # one token on stdout

Every token has iat = now; `exp` = now + TTL (default 600) unless the claims
give one (null removes it). Keys are made once per OUTDIR and reused.
"""
import base64
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_keys(out):
    os.makedirs(os.path.join(out, "private"), exist_ok=True)
    priv = {}
    path = lambda kid: os.path.join(out, "private", kid + ".pem")
    if not os.path.exists(path("rsa1")):
        keys = {
            "rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec1": ec.generate_private_key(ec.SECP256R1()),
            "ed1": ed25519.Ed25519PrivateKey.generate(),
        }
        for kid, k in keys.items():
            with open(path(kid), "wb") as f:
                f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        with open(os.path.join(out, "private", "hs1.secret"), "wb") as f:
            f.write(os.urandom(32))
    for kid in ("rsa1", "rsa2", "ec1", "ed1"):
        with open(path(kid), "rb") as f:
            priv[kid] = serialization.load_pem_private_key(f.read(), password=None)
    with open(os.path.join(out, "private", "hs1.secret"), "rb") as f:
        priv["hs1"] = f.read()
    jwks = []
    for kid, conv in (("rsa1", RSAAlgorithm), ("ec1", ECAlgorithm), ("ed1", OKPAlgorithm)):
        j = json.loads(conv.to_jwk(priv[kid].public_key()))
        j["kid"] = kid
        jwks.append(j)
    # rsa2 has no kid and is pinned to PS256 by its own alg member.
    j = json.loads(RSAAlgorithm.to_jwk(priv["rsa2"].public_key()))
    j["alg"] = "PS256"
    jwks.append(j)
    jwks.append({"kty": "oct", "kid": "hs1", "k": b64u(priv["hs1"])})
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump({"keys": jwks}, f)
    return priv


def mint(priv, kid, alg, claims, ttl=600, headers=None):
    now = int(time.time())
    c = {"iat": now, "exp": now + ttl}
    c.update(claims)
    c = {k: v for k, v in c.items() if v is not None}
    h = dict(headers or {})
    if kid and "kid" not in h:
        h["kid"] = kid
    if h.get("kid") is None:
        h.pop("kid", None)
    key = priv[kid.split(":")[0]] if kid else None
    return jwt.encode(c, key, algorithm=alg, headers=h)


def vectors(out):
    priv = make_keys(out)
    now = int(time.time())
    full = {"sub": "alice", "scope": "rstmdb:read rstmdb:write", "aud": "app", "iss": "https://issuer"}
    t = {}
    t["rs256"] = mint(priv, "rsa1", "RS256", full)
    t["ps256"] = mint(priv, "rsa1", "PS256", full)
    t["es256"] = mint(priv, "ec1", "ES256", full)
    t["eddsa"] = mint(priv, "ed1", "EdDSA", full)
    t["hs256"] = mint(priv, "hs1", "HS256", full)
    # No kid: any key of the type may verify; rsa2 only accepts PS256.
    t["ps256_nokid_rsa2"] = jwt.encode({"exp": now + 600, "sub": "bob"}, priv["rsa2"], algorithm="PS256")
    t["rs256_nokid_rsa2"] = jwt.encode({"exp": now + 600}, priv["rsa2"], algorithm="RS256")
    # alg none, by hand (PyJWT refuses to verify it, but encodes it).
    t["none"] = jwt.encode({"exp": now + 600, "sub": "mallory"}, None, algorithm="none")
    # Algorithm confusion: HS256 keyed with the RSA public key's PEM, naming the RSA key.
    pem = priv["rsa1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    hdr = b64u(json.dumps({"alg": "HS256", "kid": "rsa1", "typ": "JWT"}).encode())
    body = b64u(json.dumps({"exp": now + 600, "scope": "rstmdb:admin"}).encode())
    import hashlib
    import hmac as hm
    sig = hm.new(pem, (hdr + "." + body).encode(), hashlib.sha256).digest()
    t["confusion_hs256_rsa_pem"] = hdr + "." + body + "." + b64u(sig)
    t["es256_with_rsa_kid"] = mint(priv, "ec1", "ES256", full, headers={"kid": "rsa1"})
    # Time.
    t["expired"] = mint(priv, "rsa1", "RS256", {"exp": now - 120})
    t["expired_within_leeway"] = mint(priv, "rsa1", "RS256", {"exp": now - 10})
    t["nbf_future"] = mint(priv, "rsa1", "RS256", {"nbf": now + 120})
    t["nbf_within_leeway"] = mint(priv, "rsa1", "RS256", {"nbf": now + 10})
    t["no_exp"] = mint(priv, "rsa1", "RS256", {"exp": None})
    t["exp_string"] = mint(priv, "rsa1", "RS256", {"exp": str(now + 600)})
    # Audience and issuer.
    t["aud_array"] = mint(priv, "rsa1", "RS256", {"aud": ["other", "app"], "iss": "https://issuer"})
    t["aud_wrong"] = mint(priv, "rsa1", "RS256", {"aud": "other", "iss": "https://issuer"})
    t["aud_missing"] = mint(priv, "rsa1", "RS256", {"iss": "https://issuer"})
    t["iss_wrong"] = mint(priv, "rsa1", "RS256", {"aud": "app", "iss": "https://evil"})
    # kid.
    t["kid_unknown"] = mint(priv, "rsa1", "RS256", full, headers={"kid": "nope"})
    t["kid_wrong_key"] = mint(priv, "rsa2", "RS256", full, headers={"kid": "rsa1"})
    # Claims.
    t["scope_not_string"] = mint(priv, "rsa1", "RS256", {"scope": ["rstmdb:admin"]})
    t["limits"] = mint(priv, "rsa1", "RS256", {"scope": "rstmdb:watch",
                                                "rstmdb": {"instances": ["order-42", "cart-*"], "machines": ["order"]}})
    t["limits_bad"] = mint(priv, "rsa1", "RS256", {"rstmdb": {"instances": "order-42"}})
    t["deep_claims"] = mint(priv, "rsa1", "RS256", {"x": json.loads("[" * 40 + "]" * 40)})
    t["huge_claims"] = mint(priv, "rsa1", "RS256", {"x": "a" * 9000})
    # Malformed.
    good = t["rs256"]
    h, p, s = good.split(".")
    t["two_parts"] = h + "." + p
    t["four_parts"] = good + ".x"
    t["bad_b64_sig"] = h + "." + p + "." + s[:-2] + "*"
    t["tampered_payload"] = h + "." + b64u(json.dumps({"exp": now + 600, "scope": "rstmdb:admin"}).encode()) + "." + s
    t["padded_b64"] = h + "." + p + "." + s + "=="
    t["header_not_json"] = b64u(b"{nope") + "." + p + "." + s
    t["empty_sig"] = h + "." + p + "."
    t["crit"] = mint(priv, "rsa1", "RS256", full, headers={"crit": ["exp"], "exp": 1})
    # The verifier is run at this time, not the wall clock: a test scheduled
    # long after the vectors were made must see the same expiries.
    t["_minted_at"] = now
    with open(os.path.join(out, "tokens.json"), "w") as f:
        json.dump(t, f, indent=1)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "keys":
        make_keys(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "vectors":
        vectors(sys.argv[2])
    elif len(sys.argv) >= 6 and sys.argv[1] == "token":
        priv = make_keys(sys.argv[2])
        ttl = int(sys.argv[6]) if len(sys.argv) > 6 else 600
        print(mint(priv, sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), ttl))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
