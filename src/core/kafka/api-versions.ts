// The ApiVersions answer: the APIs a listener serves and the version range of each, straight from api-keys.ts.
// Only served APIs are listed, so a client never picks one the broker would answer wrongly; an ApiVersions
// request of a version above the range gets UNSUPPORTED_VERSION with the same list, in v0, so the client can
// retry with the highest version both sides know (KIP-511).
//
// Pure: callable from any thread.
import { assert } from '../assert.js';
import { apiRange } from './api-keys.js';
import { kafkaErrors } from './error-codes.js';
import type { ApiVersionsResponse } from './messages.generated.js';

export function apiVersionsResponse(served: readonly number[], errorCode: number): ApiVersionsResponse {
  const apiKeys = served.map((apiKey) => {
    const api = apiRange(apiKey);
    assert(api !== undefined, `served API ${apiKey} has a claimed range`);
    return { apiKey, minVersion: api.minVersion, maxVersion: api.maxVersion };
  });
  apiKeys.sort((a, b) => a.apiKey - b.apiKey);
  return {
    errorCode,
    apiKeys,
    throttleTimeMs: 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: -1,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
}

export const UNSUPPORTED_VERSION_CODE = kafkaErrors.UNSUPPORTED_VERSION.code;
