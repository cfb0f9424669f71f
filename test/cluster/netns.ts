// Test helper for brokers in network namespaces: a bridge in a namespace of its own, one namespace per node
// joined to it by a veth (`v{i}` in the node, `v{i}b` on the bridge, which a test takes down to cut the node
// off), the broker processes started inside them, and the cleanup. Needs root and `ip` (iproute2).
// Runs in the test process only; every namespace it makes is recorded in `created` for `removeAll`.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { once } from 'node:events';

export function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/**
 * Makes the bridge namespace, or returns why namespaces cannot be made here (the test then skips). Each node
 * gets its namespace, its veth to the bridge with `address`/24, and loopback up.
 */
export function makeBridgedNamespaces(
  bridgeNs: string,
  nodes: readonly { readonly ns: string; readonly address: string }[],
  created: string[],
): string | null {
  try {
    ip('netns', 'add', bridgeNs);
    created.push(bridgeNs);
  } catch (error) {
    return `network namespaces cannot be created here (${String(error).split('\n')[0]}): run as root with iproute2`;
  }
  ip('netns', 'exec', bridgeNs, 'ip', 'link', 'add', 'b0', 'type', 'bridge');
  ip('netns', 'exec', bridgeNs, 'ip', 'link', 'set', 'b0', 'up');
  for (const [i, n] of nodes.entries()) {
    ip('netns', 'add', n.ns);
    created.push(n.ns);
    ip('link', 'add', `v${i}`, 'netns', n.ns, 'type', 'veth', 'peer', 'name', `v${i}b`, 'netns', bridgeNs);
    ip('netns', 'exec', bridgeNs, 'ip', 'link', 'set', `v${i}b`, 'master', 'b0', 'up');
    ip('netns', 'exec', n.ns, 'ip', 'addr', 'add', `${n.address}/24`, 'dev', `v${i}`);
    ip('netns', 'exec', n.ns, 'ip', 'link', 'set', `v${i}`, 'up');
    ip('netns', 'exec', n.ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  return null;
}

/** Kills every child still running by its PID (SIGKILL) and waits for each to exit. */
export async function killChildren(children: readonly (ChildProcess | undefined)[]): Promise<void> {
  for (const child of children) {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    const gone = once(child, 'exit');
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {}
    await gone;
  }
}

/** Deletes the namespaces (and with them their veths and the bridge), newest first. */
export function removeNamespaces(created: readonly string[]): void {
  for (const ns of [...created].reverse()) {
    try {
      ip('netns', 'del', ns);
    } catch {}
  }
}
