import '@xyflow/react/dist/style.css';
import {
  Controls,
  type Edge,
  Handle,
  MarkerType,
  type Node,
  type NodeProps,
  Position,
  ReactFlow,
} from '@xyflow/react';
import ELK from 'elkjs/lib/elk-api.js';
import elkWorkerUrl from 'elkjs/lib/elk-worker.min.js?url';
import { useEffect, useMemo, useState } from 'react';
import { ErrorBox } from '../components.tsx';
import { navigate } from '../router.ts';
import type { InstanceStep, WorkflowStep } from '../workflow-api.ts';
import { edgeText, stepLook, stepRuns } from '../workflow-states.ts';

/**
 * A workflow's steps drawn as a DAG: ELK's layered layout places the steps (left to right, parents
 * before children), React Flow draws them. With `live`, each step shows its state and links to its
 * run. This module is loaded on demand (`lazy`): React Flow stays out of the main bundle, and ELK
 * (1.6 MB of compiled Java) runs in a Web Worker of its own, a file of the build fetched when the
 * first graph is laid out, off the page's thread.
 */
const NODE_WIDTH = 190;
const NODE_HEIGHT = 58;
const elk = new ELK({ workerUrl: elkWorkerUrl });

interface StepData extends Record<string, unknown> {
  step: WorkflowStep;
  live: InstanceStep | undefined;
}

type StepNodeType = Node<StepData, 'step'>;

function StepNode({ data }: NodeProps<StepNodeType>) {
  const { step, live } = data;
  const look = stepLook(live);
  return (
    <div
      className={`wf-node wf-${look.key}`}
      data-testid={`step-${step.id}`}
      data-state={live ? (live.skipped ? 'hand-skipped' : live.state) : undefined}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="wf-node-title">
        {live?.runId ? (
          <a href={`#/runs/${live.runId}`} aria-label={`step ${step.id}: run #${live.runId}`}>
            {step.id}
          </a>
        ) : (
          step.id
        )}
        {step.join === 'any' && step.after.length > 1 && <span className="wf-join"> any</span>}
      </div>
      <div className="wf-node-sub">
        <code>{stepRuns(step)}</code>
        {look.label && <span className="wf-node-state">{look.label}</span>}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

const NODE_TYPES = { step: StepNode };

/** An edge by its condition: a success plain, a failure red and dashed, always dotted, a value violet. */
const EDGE_LOOK: Record<'success' | 'failure' | 'always' | 'path', { color: string; dash?: string }> = {
  success: { color: '#868e96' },
  failure: { color: '#e03131', dash: '5 4' },
  always: { color: '#868e96', dash: '2 4' },
  path: { color: '#7048e8' },
};

/** The graph's shape, for the layout: it changes with the definition, not with the states. */
function shapeOf(steps: readonly WorkflowStep[]): string {
  return JSON.stringify(steps.map((s) => [s.id, s.after.map((e) => e.step)]));
}

export default function WorkflowGraph({
  steps,
  live,
}: {
  steps: readonly WorkflowStep[];
  live?: ReadonlyMap<string, InstanceStep>;
}) {
  const shape = shapeOf(steps);
  const [layout, setLayout] = useState<{
    positions: Map<string, { x: number; y: number }>;
    height: number;
  }>();
  const [error, setError] = useState<unknown>();

  // biome-ignore lint/correctness/useExhaustiveDependencies: the layout follows the shape, not each poll's array
  useEffect(() => {
    let stopped = false;
    elk
      .layout({
        id: 'workflow',
        layoutOptions: {
          'elk.algorithm': 'layered',
          'elk.direction': 'RIGHT',
          'elk.layered.spacing.nodeNodeBetweenLayers': '100',
          'elk.spacing.nodeNode': '28',
          'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
        },
        children: steps.map((s) => ({ id: s.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
        edges: steps.flatMap((s) =>
          s.after.map((edge) => ({ id: `${edge.step}>${s.id}`, sources: [edge.step], targets: [s.id] })),
        ),
      })
      .then(
        (graph) => {
          if (stopped) return;
          const positions = new Map((graph.children ?? []).map((n) => [n.id, { x: n.x ?? 0, y: n.y ?? 0 }]));
          setLayout({ positions, height: (graph as { height?: number }).height ?? NODE_HEIGHT });
        },
        (e: unknown) => !stopped && setError(e),
      );
    return () => {
      stopped = true;
    };
  }, [shape]);

  const nodes = useMemo<StepNodeType[]>(
    () =>
      steps.map((step) => ({
        id: step.id,
        type: 'step',
        position: layout?.positions.get(step.id) ?? { x: 0, y: 0 },
        data: { step, live: live?.get(step.id) },
        draggable: false,
        connectable: false,
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
      })),
    [steps, live, layout],
  );
  const edges = useMemo<Edge[]>(
    () =>
      steps.flatMap((step) =>
        step.after.map((edge) => {
          const look = EDGE_LOOK[typeof edge.on === 'string' ? edge.on : 'path'];
          const label = edgeText(edge.on);
          return {
            id: `${edge.step}>${step.id}`,
            source: edge.step,
            target: step.id,
            style: { stroke: look.color, strokeWidth: 1.5, strokeDasharray: look.dash },
            markerEnd: { type: MarkerType.ArrowClosed, color: look.color },
            ...(label ? { label, labelBgPadding: [4, 2] as [number, number] } : {}),
          };
        }),
      ),
    [steps],
  );

  if (error) return <ErrorBox error={error} />;
  if (!layout) return <div className="wf-graph wf-graph-loading">Laying out the graph…</div>;
  const height = Math.min(560, Math.max(160, layout.height + 60));
  return (
    <figure className="wf-graph" style={{ height }} aria-label="Workflow graph">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        fitView
        fitViewOptions={{ padding: 0.12, maxZoom: 1 }}
        minZoom={0.2}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        zoomOnScroll={false}
        preventScrolling={false}
        onNodeClick={(_, node) => {
          const runId = (node.data as StepData).live?.runId;
          if (runId) navigate(`/runs/${runId}`);
        }}
      >
        <Controls showInteractive={false} />
      </ReactFlow>
    </figure>
  );
}
