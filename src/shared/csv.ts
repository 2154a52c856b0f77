/** CSV of grid results (slices, surfaces), for other tools. Pure: used by the CLI and the extension. */
import type { SliceResult, SurfaceResult } from './results';

export function isSurface(r: SliceResult | SurfaceResult): r is SurfaceResult {
  return r.kind === 'surface' || r.kind === 'trajectory';
}

/** Long-format CSV of a grid result, one row per point (and direction), for other tools. */
export function gridCsv(r: SliceResult | SurfaceResult): string {
  const cell = (v: number | null | undefined): string => (v === null || v === undefined ? '' : String(v));
  if (!isSurface(r)) {
    const multi = Array.isArray(r.loss[0]);
    const get = (a: SliceResult['loss'] | undefined, d: number, i: number): number | null | undefined =>
      a === undefined ? undefined : multi ? (a as (number | null)[][])[d][i] : (a as (number | null)[])[i];
    const lines = ['direction,x,loss,accuracy,test_loss,test_accuracy'];
    r.directions.forEach((dir, d) =>
      r.x.forEach((x, i) => lines.push([dir.kind, x, cell(get(r.loss, d, i)), cell(get(r.accuracy, d, i)), cell(get(r.testLoss, d, i)), cell(get(r.testAccuracy, d, i))].join(','))),
    );
    return `${lines.join('\n')}\n`;
  }
  const lines = ['x,y,loss,accuracy,test_loss,test_accuracy'];
  r.y.forEach((y, iy) =>
    r.x.forEach((x, ix) => lines.push([x, y, cell(r.loss[iy][ix]), cell(r.accuracy?.[iy][ix]), cell(r.testLoss?.[iy][ix]), cell(r.testAccuracy?.[iy][ix])].join(','))),
  );
  return `${lines.join('\n')}\n`;
}
