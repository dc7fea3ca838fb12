// TLS as labc's network secret makes it (lib/trust/tls-link.ts): TLS 1.3 with an external PSK,
// no certificate, the same suites. The key is the benchmark's own, a constant: both roles know it.
export const TLS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256',
  sigalgs: 'rsa_pkcs1_sha256',
};
export const PSK = Buffer.alloc(32, 0x5a);
export const IDENTITY = 'bench';
