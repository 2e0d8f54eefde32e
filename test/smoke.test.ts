import t from 'tap';
t.test('tap runs', async (t) => { t.equal(1 + 1, 2); });
