-- How a stored video came to be from the file that arrived (source codec, bitrate and size;
-- whether it was kept, remuxed or re-encoded; a compression pass and its measured SSIM), as
-- JSON. NULL for images and for items completed before this column existed.
ALTER TABLE items ADD COLUMN encoding TEXT;
