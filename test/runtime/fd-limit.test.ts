// countOpenDescriptors against the listing of /proc/self/fd: the same count, and it follows descriptors opened
// and closed exactly. Runs on the test's own thread; Linux only (as the broker).
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { countOpenDescriptors } from '../../src/runtime/fd-limit.js';

test('the open descriptors are counted exactly, as the listing of /proc/self/fd counts them', () => {
  // The listing counts its own descriptor for the directory.
  assert.equal(countOpenDescriptors(), readdirSync('/proc/self/fd').length - 1);
  const before = countOpenDescriptors();
  const fds = Array.from({ length: 300 }, () => openSync('/dev/null', 'r'));
  try {
    assert.equal(countOpenDescriptors(), before + 300);
    assert.equal(countOpenDescriptors(), readdirSync('/proc/self/fd').length - 1);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  assert.equal(countOpenDescriptors(), before);
});
