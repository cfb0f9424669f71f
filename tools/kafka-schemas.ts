// Regenerates src/core/kafka/messages.generated.ts from Kafka's JSON message schemas in
// test/fixtures/kafka-schemas/ and the ranges claimed in src/core/kafka/api-keys.ts. Without `--write` it prints
// whether the file is current and exits 1 if not.
// Usage: node --import tsx tools/kafka-schemas.ts [--write]
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { generateMessagesModule } from '../src/core/kafka/schema-gen.js';

export function readSchemaDir(dir: URL): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.json')) files.set(name, readFileSync(new URL(name, dir), 'utf8'));
  }
  return files;
}

export const schemaDir = new URL('../test/fixtures/kafka-schemas/', import.meta.url);
export const generatedFile = new URL('../src/core/kafka/messages.generated.ts', import.meta.url);

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = generateMessagesModule(readSchemaDir(schemaDir));
  let current = '';
  try {
    current = readFileSync(generatedFile, 'utf8');
  } catch {}
  if (process.argv.includes('--write')) {
    writeFileSync(generatedFile, text);
    console.log(
      text === current ? 'messages.generated.ts already up to date' : 'messages.generated.ts rewritten',
    );
  } else if (text !== current) {
    console.error('messages.generated.ts is stale: run node --import tsx tools/kafka-schemas.ts --write');
    process.exit(1);
  } else {
    console.log('messages.generated.ts is up to date');
  }
}
