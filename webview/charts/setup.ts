/** Chart.js, tree-shaken: only the pieces the panel draws with, registered once. */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Decimation,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  Tooltip,
} from 'chart.js';
import { alpha, type Palette } from '../theme';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  BarController,
  BarElement,
  LinearScale,
  LogarithmicScale,
  CategoryScale,
  Decimation,
  Filler,
  Legend,
  Tooltip,
);
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.responsive = true;

/** Theme defaults for every chart (charts also set their own colours; see themeScale). */
export function applyChartDefaults(p: Palette): void {
  Chart.defaults.color = p.foreground;
  Chart.defaults.borderColor = p.grid;
  Chart.defaults.font.family = p.fontFamily;
  Chart.defaults.font.size = p.fontSize;
}

/** Colours and fonts of one axis (grid lines of unlabelled ticks, e.g. a log axis's 3, 4, 6..., are fainter). */
export function scaleTheme(
  p: Palette,
  title: string,
): {
  title: { display: boolean; text: string; color: string; font: { size: number } };
  ticks: { color: string; maxRotation: number };
  grid: { color: (ctx: { tick?: { label?: unknown } }) => string };
  border: { color: string };
} {
  const minor = alpha(p.grid, 0.35);
  return {
    title: { display: title !== '', text: title, color: p.muted, font: { size: p.fontSize } },
    ticks: { color: p.muted, maxRotation: 0 },
    grid: { color: (ctx) => (ctx.tick && (ctx.tick.label === '' || ctx.tick.label === undefined) ? minor : p.grid) },
    border: { color: p.highContrast ? p.foreground : p.grid },
  };
}

/** Tooltip colours from the palette (the default dark box is wrong on light themes). */
export function tooltipTheme(p: Palette): {
  backgroundColor: string;
  titleColor: string;
  bodyColor: string;
  borderColor: string;
  borderWidth: number;
} {
  return { backgroundColor: p.background, titleColor: p.foreground, bodyColor: p.foreground, borderColor: p.border, borderWidth: 1 };
}

export { Chart };
