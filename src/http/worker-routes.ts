// The routes of this node's partition-worker placement (issue 14): its workers' load and where each partition
// is, and a move of one partition between workers by hand. Served and documented like the main route table
// (the OpenAPI details are in `openapi.ts`, the ACLs in `route-access.ts`). Built on the acceptor (main) thread.
import type { WorkerMoves } from '../broker/worker-moves.js';
import type { Route } from './server.js';

export function buildWorkerRoutes(moves: WorkerMoves): Route[] {
  return [
    {
      method: 'get',
      pattern: '/admin/workers',
      operationId: 'workerPlacement',
      summary:
        "This node's partition workers: load per worker and per partition, placement, the balancer's last round",
      hasBody: false,
      handle: (q, r) => moves.describe(q, r),
    },
    {
      method: 'post',
      pattern: '/admin/workers/moves',
      operationId: 'moveWorkerPartition',
      summary: 'Move one partition held by this node to another of its partition workers',
      hasBody: true,
      handle: (q, r) => moves.moveByHand(q, r),
    },
    {
      method: 'post',
      pattern: '/admin/workers/balance',
      operationId: 'balanceWorkers',
      summary:
        'Run one round of the worker balancer now, over the load since the last look (what the timer runs)',
      hasBody: false,
      handle: (q, r) => moves.balanceNow(q, r),
    },
  ];
}
