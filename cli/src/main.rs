//! `nsq` binary: parse the command line, build a runtime, run one subcommand.

use anyhow::Context;
use clap::{Parser, Subcommand};
use nsq_cli::{bench, drain, publish, stat, tail, up};
use nsqlookupd::server::ShutdownSignal;

#[derive(Debug, Parser)]
#[command(
    name = "nsq",
    version,
    about = "Publish, tail, watch and benchmark NSQ — or run nsqd and nsqlookupd locally",
    after_help = "Try `nsq up` in one terminal, then\n  `nsq tail --nsqd-tcp-address 127.0.0.1:4150 --topic t` in another and\n  `nsq pub --topic t hello` in a third."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an nsqlookupd and an nsqd (registered with it) in this process until Ctrl-C
    Up(up::UpArgs),
    /// Publish messages (arguments, or one per line of stdin) to a topic
    Pub(publish::PubArgs),
    /// Print the bodies of a topic's messages as they arrive
    Tail(tail::TailArgs),
    /// Print queue depth, in-flight, requeues and rates from nsqd /stats, periodically
    Stat(stat::StatArgs),
    /// Move every queued message of a removed nsqd's data directory to surviving nodes
    Drain(drain::DrainArgs),
    /// Measure nsqd throughput the way nsq's bench_writer and bench_reader do
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Publish MPUB batches for --runfor and print the rate (bench_writer)
    Writer(bench::WriterArgs),
    /// Consume with one RDY and a FIN per message for --runfor and print the rate (bench_reader)
    Reader(bench::ReaderArgs),
    /// The writer, then the reader, against one nsqd (bench.sh)
    Run(bench::RunArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let workers = match &cli.command {
        Command::Bench(BenchCommand::Writer(a)) => a.concurrency,
        Command::Bench(BenchCommand::Reader(a)) => a.concurrency,
        Command::Bench(BenchCommand::Run(a)) => a.concurrency,
        Command::Up(_) => usize::MAX,
        _ => 1,
    };
    // One worker thread per benchmark connection (never more than the cores): the
    // client shares the machine with the nsqd under test.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.clamp(1, cores))
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => run_up(args).await,
        Command::Pub(args) => {
            publish::run(&args).await?;
            Ok(())
        }
        Command::Drain(args) => {
            let report = drain::run(&args).await?;
            println!(
                "drained {}: {} channel messages imported, {} topic messages published",
                args.data_path.display(),
                report.channel_messages,
                report.topic_messages
            );
            Ok(())
        }
        Command::Tail(args) => {
            let mut signal = ShutdownSignal::install().context("installing signal handlers")?;
            tail::run(&args, std::io::stdout(), signal.recv()).await?;
            Ok(())
        }
        Command::Stat(args) => {
            let mut signal = ShutdownSignal::install().context("installing signal handlers")?;
            stat::run(&args, signal.recv()).await?;
            Ok(())
        }
        Command::Bench(BenchCommand::Writer(args)) => {
            bench::report("bench_writer", &bench::writer(&args).await?);
            Ok(())
        }
        Command::Bench(BenchCommand::Reader(args)) => {
            bench::report("bench_reader", &bench::reader(&args).await?);
            Ok(())
        }
        Command::Bench(BenchCommand::Run(args)) => {
            bench::report("bench_writer", &bench::writer(&args.writer()).await?);
            bench::report("bench_reader", &bench::reader(&args.reader()).await?);
            Ok(())
        }
    }
}

async fn run_up(args: up::UpArgs) -> anyhow::Result<()> {
    init_logging();
    // Handlers first, so a signal sent as soon as we report listening is not fatal.
    let mut signal = ShutdownSignal::install().context("installing signal handlers")?;
    let running = up::Up::start(&args).await?;
    println!("{}", running.describe());
    println!("Ctrl-C to stop");
    signal.recv().await;
    running.shutdown().await;
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
