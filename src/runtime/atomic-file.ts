// Replacing a small file atomically and durably: write a temp file, fsync it, rename it over the old one, fsync
// the directory. A crash leaves either the old or the new contents, never a torn file, and once the promise
// resolves the new contents survive power loss. Async I/O, so the calling event loop never blocks on it.
// Callable from any thread; two writers of the same file must serialize themselves.
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeFileAtomically(dir: string, name: string, text: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const finalPath = join(dir, name);
  const tempPath = `${finalPath}.tmp`;
  const file = await open(tempPath, 'w');
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tempPath, finalPath);
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
