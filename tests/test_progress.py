"""Progress is for a person at a terminal: bars on stderr there, nothing under --json or when stderr is a file or a pipe;
stdout holds only the command's own output (no Trainer log dicts)."""
import fcntl, os, pty, select, struct, subprocess, termios
import pytest
from conftest import cli, cli_exe

def _stderr_at_a_terminal(*args) -> str:
    "Run `ai-standards ARGS` with stderr on a pseudo-terminal (stdout a pipe); return what reached the terminal."
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 120, 0, 0))  # 24 x 120: tqdm draws nothing 0 wide
    proc = subprocess.Popen([cli_exe(), *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b''
    while True:
        r, _, _ = select.select([master], [], [], 1)
        if r:
            try: data = os.read(master, 65536)
            except OSError: break  # the terminal closed: the command is done
            if not data: break
            out += data
        elif proc.poll() is not None: break
    proc.wait(); os.close(master)
    return out.decode(errors='replace')

def test_no_progress_bars_when_stderr_is_not_a_terminal():
    "Redirected stderr (a log file, CI) gets no tqdm redraws; the summary still reaches stdout."
    from ai_standards.sample import sample_corpus_dir
    r = cli('chunk', sample_corpus_dir())
    assert r.returncode == 0 and r.stdout.startswith('30 documents'), r.stderr
    assert '%|' not in r.stderr and '\r' not in r.stderr, r.stderr[:500]

def test_progress_bars_at_a_terminal_but_not_with_json():
    from ai_standards.sample import sample_corpus_dir
    assert 'reading: 100%' in _stderr_at_a_terminal('chunk', sample_corpus_dir())
    assert '%|' not in _stderr_at_a_terminal('chunk', sample_corpus_dir(), '--json')

def test_trainer_prints_no_log_dicts(tmp_path, capfd):
    "With its progress bar on, a Trainer still prints no `{'loss': ...}` dict (transformers' ProgressCallback would, to stdout)."
    import torch
    from transformers import Trainer, TrainingArguments
    from ai_standards.training import _bars_only
    class Tiny(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Linear(2, 1)
        def forward(self, x, labels): return {'loss': ((self.w(x).squeeze(-1) - labels) ** 2).mean()}
    data = [{'x': torch.tensor([float(i), 1.0]), 'labels': torch.tensor(float(i))} for i in range(8)]
    args = TrainingArguments(str(tmp_path), num_train_epochs=2, per_device_train_batch_size=2, logging_steps=1,
                             report_to='none', disable_tqdm=False, use_cpu=True, save_strategy='no')
    trainer = Trainer(model=Tiny(), args=args, train_dataset=data)
    _bars_only(trainer)
    trainer.train()
    out, err = capfd.readouterr()
    assert "'loss'" not in out and "'loss'" not in err, out[-500:]
    assert any('loss' in h for h in trainer.state.log_history)  # the losses are kept, just not printed
