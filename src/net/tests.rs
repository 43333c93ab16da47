use super::*;
use crate::smtp::proto::command::MAX_AUTH_LINE;
use tokio::io::duplex;

async fn connection_with(input: &'static [u8]) -> Connection<tokio::io::DuplexStream> {
    let (client, server) = duplex(1024);
    tokio::spawn(async move {
        let mut client = client;
        let _ = client.write_all(input).await;
        let _ = client.shutdown().await;
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink).await;
    });
    Connection::new(
        Stream::Plain(server),
        Duration::from_secs(5),
        CancellationToken::new(),
    )
}

#[tokio::test]
async fn lines_and_an_overlong_line_keep_the_stream_in_sync() {
    let long = Box::leak(format!("{}\r\nNOOP\r\n", "A".repeat(40_000)).into_boxed_str());
    let mut input = b"EHLO x\r\nQUIT\n".to_vec();
    input.extend_from_slice(long.as_bytes());
    let mut conn = connection_with(Box::leak(input.into_boxed_slice())).await;
    assert_eq!(
        conn.read_line(512).await.ok(),
        Some(Line::Complete(b"EHLO x".to_vec()))
    );
    assert_eq!(
        conn.read_line(512).await.ok(),
        Some(Line::Complete(b"QUIT".to_vec()))
    );
    assert_eq!(conn.read_line(512).await.ok(), Some(Line::TooLong));
    assert_eq!(
        conn.read_line(512).await.ok(),
        Some(Line::Complete(b"NOOP".to_vec()))
    );
    assert!(matches!(
        conn.read_line(512).await,
        Err(Interrupted::Closed)
    ));
}

#[tokio::test]
async fn the_longest_line_a_session_reads_fits_the_buffer() {
    // SMTP AUTH lines are the longest any session reads through `read_line`; a limit past
    // the buffer would end such a line as a closed connection.
    let line = Box::leak(format!("{}\r\n", "C".repeat(MAX_AUTH_LINE - 2)).into_boxed_str());
    let mut conn = connection_with(line.as_bytes()).await;
    assert!(
        matches!(conn.read_line(MAX_AUTH_LINE).await, Ok(Line::Complete(l)) if l.len() == MAX_AUTH_LINE - 2)
    );
}

#[tokio::test]
async fn buffers_grow_for_long_input_and_are_small_while_a_session_waits() {
    let (mut client, server) = duplex(64 * 1024);
    let mut conn = Connection::new(
        Stream::Plain(server),
        Duration::from_secs(5),
        CancellationToken::new(),
    );
    assert_eq!(conn.input.len(), INPUT_WAITING);
    let long = "A".repeat(3 * INPUT_WAITING);
    client
        .write_all(format!("{long}\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        conn.read_line(READ_BUFFER).await.ok(),
        Some(Line::Complete(long.into_bytes()))
    );
    assert_eq!(conn.input.len(), READ_BUFFER);
    conn.write(b"250 OK\r\n").await.unwrap();
    client.write_all(b"NOOP\r\n").await.unwrap();
    assert_eq!(
        conn.read_line(512).await.ok(),
        Some(Line::Complete(b"NOOP".to_vec()))
    );
    // Waiting for the NOOP, with nothing left over from the long line: back to the small
    // input buffer, and the reply buffer was sent and not kept.
    assert_eq!(conn.input.len(), INPUT_WAITING);
    assert_eq!(conn.output.capacity(), 0);
    let mut reply = [0; 8];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"250 OK\r\n");
}

#[tokio::test]
async fn a_line_of_exactly_the_limit_is_accepted() {
    let line = Box::leak(format!("{}\r\n", "B".repeat(510)).into_boxed_str());
    let mut conn = connection_with(line.as_bytes()).await;
    assert!(matches!(conn.read_line(512).await, Ok(Line::Complete(l)) if l.len() == 510));
    let line = Box::leak(format!("{}\r\n", "B".repeat(511)).into_boxed_str());
    let mut conn = connection_with(line.as_bytes()).await;
    assert_eq!(conn.read_line(512).await.ok(), Some(Line::TooLong));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_bounds_the_total_however_bytes_are_paced() {
    let (mut client, server) = duplex(64);
    tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if client.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut conn = Connection::new(
        Stream::Plain(server),
        Duration::from_secs(60),
        CancellationToken::new(),
    );
    conn.set_deadline(Some(Duration::from_secs(60)));
    let started = tokio::time::Instant::now();
    assert!(matches!(
        conn.read_line(4096).await,
        Err(Interrupted::IdleTimeout)
    ));
    assert_eq!(started.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn a_line_must_arrive_within_the_command_timeout() {
    let (mut client, server) = duplex(64);
    tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if client.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut conn = Connection::new(
        Stream::Plain(server),
        Duration::from_secs(300),
        CancellationToken::new(),
    );
    let started = tokio::time::Instant::now();
    assert!(matches!(
        conn.read_line(4096).await,
        Err(Interrupted::IdleTimeout)
    ));
    // 10 s of silence before the first octet, then COMMAND_TIMEOUT for the line.
    assert_eq!(started.elapsed(), Duration::from_secs(10) + COMMAND_TIMEOUT);
}

#[tokio::test]
async fn quick_ack_passes_bytes_both_ways() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut client = TcpStream::connect(address).await.unwrap();
        client.write_all(b"A1 NOOP\r\n").await.unwrap();
        let mut reply = [0u8; 12];
        client.read_exact(&mut reply).await.unwrap();
        reply
    });
    let (socket, _) = listener.accept().await.unwrap();
    let mut connection = Connection::new(
        Stream::Plain(QuickAck(socket)),
        Duration::from_secs(5),
        CancellationToken::new(),
    );
    let line = connection.read_line(100).await.unwrap();
    assert_eq!(line, Line::Complete(b"A1 NOOP".to_vec()));
    connection.write(b"A1 OK done\r\n").await.unwrap();
    connection.flush().await.unwrap();
    assert_eq!(&client.await.unwrap(), b"A1 OK done\r\n");
}

#[tokio::test(start_paused = true)]
async fn silence_times_out() {
    let (_client, server) = duplex(64);
    let mut conn = Connection::new(
        Stream::Plain(server),
        Duration::from_secs(300),
        CancellationToken::new(),
    );
    assert!(matches!(
        conn.read_line(512).await,
        Err(Interrupted::IdleTimeout)
    ));
}
