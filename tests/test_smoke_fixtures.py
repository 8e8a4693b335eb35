import smtplib

import sqlalchemy as sa


def test_database_url_is_empty_and_usable(database_url):
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        assert sa.inspect(conn).get_table_names() == []
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert conn.execute(sa.text("SELECT x FROM t")).scalar() == 1
    engine.dispose()


def test_smtp_server_records(smtp_server):
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail("a@example.org", ["b@example.org"], b"Subject: hi\r\n\r\nbody\r\n")
    assert smtp_server.messages[0].rcpt_tos == ["b@example.org"]
    assert b"body" in smtp_server.messages[0].data
