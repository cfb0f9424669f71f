// Raft simulation: crashes (including between a Ready and its persist), Figure 8 and unreliable churn.
import { testScenario } from './raft-seeds.js';

testScenario('persistence');
testScenario('crash_before_persist');
testScenario('figure8');
testScenario('figure8_unreliable');
testScenario('unreliable_churn');
