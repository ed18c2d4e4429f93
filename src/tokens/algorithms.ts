/** The signing algorithms gatepass knows: the names JWT_ALGORITHM and `gatepass/verify` accept. */
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export const ALGORITHMS = [...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS] as const;
export type HmacAlgorithm = (typeof HMAC_ALGORITHMS)[number];
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export type Algorithm = (typeof ALGORITHMS)[number];

export function isHmacAlgorithm(algorithm: string): algorithm is HmacAlgorithm {
  return (HMAC_ALGORITHMS as readonly string[]).includes(algorithm);
}

export function isAlgorithm(algorithm: string): algorithm is Algorithm {
  return (ALGORITHMS as readonly string[]).includes(algorithm);
}
