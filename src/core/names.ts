// Topic names and the directory names derived from them. This module is the ONLY path from a topic name to a
// file-system name: a name that passes `validateTopicName` cannot escape the data directory (no `/`, no `..`,
// no NUL, nothing outside a small ASCII set), so nothing downstream needs to re-check it.
// Pure: callable from any thread.
import { assert } from './assert.js';

/** Kafka's limit: 249 characters, so that `<topic>-<partition>` stays under common 255-byte name limits. */
export const TOPIC_NAME_LENGTH_MAX = 249;

const topicNamePattern = /^[a-zA-Z0-9._-]+$/;

/** Returns null when `name` is a valid topic name, otherwise a message that names the problem. */
export function validateTopicName(name: string): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name.length > TOPIC_NAME_LENGTH_MAX) {
    return `topic name is ${name.length} characters long; the limit is ${TOPIC_NAME_LENGTH_MAX}`;
  }
  if (name === '.' || name === '..') return `topic name may not be '${name}'`;
  if (!topicNamePattern.test(name)) {
    return 'topic name may contain only ASCII letters, digits, ".", "_" and "-"';
  }
  return null;
}

/** The directory name of one partition's log. Asserts that the topic name is valid and the partition sane. */
export function partitionDirName(topic: string, partition: number): string {
  const problem = validateTopicName(topic);
  assert(problem === null, `partitionDirName on an invalid topic name: ${problem}`);
  assert(
    Number.isInteger(partition) && partition >= 0 && partition <= 0x7fffffff,
    `partition must be a non-negative int32, got ${partition}`,
  );
  return `${topic}-${partition}`;
}
