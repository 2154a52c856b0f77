/** `info`: the model's layers and parameters, its loss and accuracy on the data, which products are available. */
import type { InfoResult } from '../results';
import { fmt } from '../format';
import { WIRE_SEED } from './common';
import { defineJob, textTable } from './spec';

export interface InfoOptions {
  /** Accepted (the extension sends its seed with every job), not used. */
  seed?: number;
}

export const info = defineJob<InfoOptions, InfoResult>({
  summary: 'describe the model: layers, parameters, loss and accuracy on the data',
  options: { seed: WIRE_SEED },
  defaults: {},
  resultKind: 'info',
  title: () => 'Model',
  format(r) {
    const rows = [['layer', 'kind', 'output', 'params', '']];
    for (const l of r.layers) rows.push([l.name, l.kind, `[${l.outShape.join(', ')}]`, String(l.params), l.detail]);
    const lines = [`${r.model}: ${r.params.toLocaleString()} trainable parameters`, textTable(rows), ''];
    if (r.samples !== undefined) lines.push(`data     ${r.samples} samples; ${r.lossName} = ${fmt(r.lossValue ?? NaN, 6)}${r.accuracy !== undefined ? `, accuracy ${(r.accuracy * 100).toFixed(1)}%` : ''}`);
    lines.push(`H·v      ${r.hvpMethods}`, `backend  ${r.backendDetail}`);
    return lines.join('\n');
  },
});
