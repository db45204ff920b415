-- An SQL workload for the sqlite3 shell: schema, bulk insert through a recursive CTE,
-- joins, aggregates, window functions, JSON, indexes, transactions, triggers, views.
.headers off
.mode list
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customers(id),
                    amount REAL, placed TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO customers SELECT i, 'customer' || i, CASE i % 4 WHEN 0 THEN 'Oslo'
  WHEN 1 THEN 'Lima' WHEN 2 THEN 'Pune' ELSE 'Kyiv' END FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
INSERT INTO orders SELECT i, 1 + (i * 7) % 40, round((i * 37 % 1000) / 10.0, 2),
  date('2024-01-01', '+' || (i % 365) || ' days') FROM n;
CREATE INDEX orders_by_customer ON orders(customer);
SELECT count(*), round(sum(amount), 2), min(placed), max(placed) FROM orders;
SELECT city, count(DISTINCT c.id), round(avg(o.amount), 3) FROM customers c
  JOIN orders o ON o.customer = c.id GROUP BY city ORDER BY city;
SELECT name, total, rank FROM (
  SELECT c.name, round(sum(o.amount), 2) AS total,
         rank() OVER (ORDER BY sum(o.amount) DESC) AS rank
  FROM customers c JOIN orders o ON o.customer = c.id GROUP BY c.id) WHERE rank <= 3;
SELECT strftime('%m', placed) AS month, count(*),
       round(sum(sum(amount)) OVER (ORDER BY strftime('%m', placed)), 2)
  FROM orders GROUP BY month ORDER BY month LIMIT 4;
SELECT json_object('id', id, 'name', name) FROM customers WHERE id IN (1, 2);
SELECT json_extract('{"a":[1,2,{"b":"deep"}]}', '$.a[2].b'), json_array_length('[1,2,3]');
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 90;
CREATE TABLE audit(msg TEXT);
CREATE TRIGGER log_delete AFTER DELETE ON orders BEGIN
  INSERT INTO audit VALUES ('deleted ' || old.id);
END;
BEGIN;
DELETE FROM orders WHERE id IN (SELECT id FROM big_orders ORDER BY id LIMIT 2);
ROLLBACK;
SELECT count(*) FROM audit;
BEGIN;
UPDATE orders SET amount = amount * 2 WHERE customer = 5;
COMMIT;
SELECT round(sum(amount), 2) FROM orders WHERE customer = 5;
SELECT upper('sqlite'), length('naïve'), substr('workload', 2, 4), printf('%08.3f', 3.14159),
       hex(zeroblob(3)), typeof(1), typeof(1.5), typeof('x'), typeof(NULL), 7 / 2, 7 % 3;
SELECT group_concat(name, ';') FROM (SELECT name FROM customers ORDER BY id DESC LIMIT 3);
EXPLAIN QUERY PLAN SELECT * FROM orders WHERE customer = 3;
PRAGMA integrity_check;
