"""Evaluation: metrics (PSNR, SSIM, colourfulness, LPIPS, FID), reports, weight downloads, plots."""
