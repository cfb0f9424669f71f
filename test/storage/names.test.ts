// Topic-name validation, the only gate between a client's topic name and a directory name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { partitionDirName, TOPIC_NAME_LENGTH_MAX, validateTopicName } from '../../src/core/names.js';

test('every rejected shape of topic name is refused with a message', () => {
  const rejected = [
    '',
    'a'.repeat(250),
    '.',
    '..',
    'a/b',
    '/etc',
    '../x',
    'a\\b',
    'a\0b',
    'with space',
    ' lead',
    'tab\t',
    'new\nline',
    'ünïcode',
    '日本',
    'emoji🙂',
    'colon:x',
    'star*',
  ];
  for (const name of rejected) {
    const problem = validateTopicName(name);
    assert.equal(typeof problem, 'string', `${JSON.stringify(name)} must be rejected`);
    assert.throws(() => partitionDirName(name, 0), `${JSON.stringify(name)} must not become a directory`);
  }
});

test('valid names, including the longest, map to <topic>-<partition>', () => {
  for (const name of ['a', 'orders', 'a.b_c-D9', '...', '.hidden', 'x'.repeat(TOPIC_NAME_LENGTH_MAX)]) {
    assert.equal(validateTopicName(name), null, name);
  }
  assert.equal(partitionDirName('orders', 12), 'orders-12');
  assert.throws(() => partitionDirName('orders', -1));
  assert.throws(() => partitionDirName('orders', 1.5));
});

test('any accepted name is made only of the safe characters and is neither . nor ..', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 260 }), (name) => {
      if (validateTopicName(name) !== null) return;
      assert.match(name, /^[a-zA-Z0-9._-]{1,249}$/);
      assert.ok(name !== '.' && name !== '..');
      assert.ok(!partitionDirName(name, 0).includes('/'));
    }),
    { numRuns: 2000 },
  );
});
