// Raft simulation: storage writes and fsyncs that fail (a full disk, an I/O error) at random steps of a
// Ready's persistence, or for a stretch of time on chosen nodes, with the shell stalling and retrying as
// RaftHost does; the safety invariants are checked after every step.
import { testScenario } from './raft-seeds.js';

testScenario('storage_faults');
testScenario('disk_full');
