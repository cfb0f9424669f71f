// Reading the kernel's socket tables: established connections to one local port counted by remote address,
// from lines captured on this machine's /proc/net/tcp and /proc/net/tcp6 (little-endian words); listening and
// TIME_WAIT sockets and other ports are not counted; IPv4-mapped IPv6 addresses are keyed as IPv4, and every
// spelling of an IPv6 address meets the kernel's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, countEstablishedByRemote } from '../../src/core/tcp-table.js';

const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41007 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 41999 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:A2C6 01 00000000:00000000 00:00000000 00000000     0        0 42000 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:1F90 0201A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 42001 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:1F90 0100007F:A2C8 06 00000000:00000000 03:00000CA1 00000000     0        0 0 3 0000000000000000
   5: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 42002 1 0000000000000000 20 4 30 10 -1
`;
const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:B000 01 00000000:00000000 00:00000000 00000000     0        0 6 1 0
   2: 00000000000000000000000001000000:1F90 B80D0120000000000000000001000000:B001 01 00000000:00000000 00:00000000 00000000     0        0 7 1 0
`;

test('established connections to the port, by remote address', () => {
  const counts = new Map<string, number>();
  countEstablishedByRemote(tcp, 8080, true, counts);
  countEstablishedByRemote(tcp6, 8080, true, counts);
  assert.deepEqual(
    Object.fromEntries(counts),
    { '127.0.0.1': 3, '192.168.1.2': 1, '2001:db8:0:0:0:0:0:1': 1 },
    'the listener, the TIME_WAIT socket and the connection from port 8080 outwards are not counted',
  );
  const other = new Map<string, number>();
  countEstablishedByRemote(tcp, 9090, true, other);
  assert.equal(other.size, 0);
});

test('every spelling of an address has the key the kernel table gives it', () => {
  assert.equal(addressKey('127.0.0.1'), '127.0.0.1');
  assert.equal(addressKey('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
  assert.equal(addressKey('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(addressKey('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8:0:0:0:0:0:1');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0:0:0:0:1');
  assert.equal(addressKey('::1'), '0:0:0:0:0:0:0:1');
  assert.equal(addressKey('not-an-address'), 'not-an-address');
});
