/** Shared benchmark utilities: import from 'bench/lib/index.js'. */
export * from './stats.js';
export * from './alternate.js';
export * from './format.js';
export * from './markdown.js';
export * from './svg.js';
export * from './env.js';
export * from './child.js';
export * from './args.js';
