// no-exports: a broken experiment module (test/hostile/cases.tsv)
export const nothing = 1;
